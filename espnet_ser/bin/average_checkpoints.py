#!/usr/bin/env python3
"""Average the N best epoch checkpoints of an experiment (stage 5), or a given list.

    python -m espnet_ser.bin.average_checkpoints --exp_dir exp/x --metric valid.acc --nbest 10
    # -> exp/x/valid.acc.ave_10best.pth (+ .json), exp/x/valid.acc.ave.pth -> it
    python -m espnet_ser.bin.average_checkpoints \\
        --checkpoints exp/x/8epoch.pth exp/x/9epoch.pth --out exp/x/ave_8-9.pth
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_ser.utils.averaging import average_checkpoint_files, average_nbest_checkpoints
from espnet_ser.utils.cli import setup_logging, str2bool


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return n


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Average the N best epoch checkpoints",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--exp_dir", help="Experiment directory with checkpoint.pth and {epoch}epoch.pth files")
    add("--metric", default="valid.acc",
        help="Reported metric <phase>.<key> used to rank epochs (valid.acc, valid.loss, ...)")
    add("--nbest", type=_positive_int, default=10, help="Epochs to average")
    add("--mode", choices=["max", "min"],
        help="max: larger is better; min: smaller is better. "
        "Default: min for names with loss/cer/wer/eer/mse..., else max")
    add("--out", help="Output model file (default: <exp_dir>/<metric>.ave_<nbest>best.pth); "
        "required with --checkpoints")
    add("--link", type=str2bool, default=True,
        help="Also point <metric>.ave.pth (beside --out) at the averaged model")
    add("--checkpoints", nargs="+",
        help="Average exactly these model files instead of selecting by --metric")
    add("--log_level", default="INFO", help="Logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.checkpoints is not None and args.out is None:
        parser.error("--out is required with --checkpoints")
    if args.checkpoints is None and args.exp_dir is None:
        parser.error("give --exp_dir (select by --metric) or --checkpoints")
    setup_logging(args.log_level)
    logging.info(" ".join(["average_checkpoints"] + (cmd if cmd is not None else sys.argv[1:])))
    try:
        if args.checkpoints is not None:
            average_checkpoint_files(args.checkpoints, args.out)
        else:
            average_nbest_checkpoints(args.exp_dir, metric=args.metric, nbest=args.nbest,
                                      mode=args.mode, out=args.out, link=args.link)
    except (OSError, ValueError, KeyError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
