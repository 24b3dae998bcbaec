#!/usr/bin/env python3
"""Average the N best epoch checkpoints of an experiment (stage 5), or a given list.

Examples:
    # the 10 best epochs by validation accuracy, as ESPnet's trainer would at the end
    python -m espnet_ser.bin.average_checkpoints --exp_dir exp/x --metric valid.acc --nbest 10
    # -> exp/x/valid.acc.ave_10best.pth, exp/x/valid.acc.ave_10best.pth.json,
    #    exp/x/valid.acc.ave.pth -> valid.acc.ave_10best.pth

    # an explicit list of model files
    python -m espnet_ser.bin.average_checkpoints \\
        --checkpoints exp/x/8epoch.pth exp/x/9epoch.pth --out exp/x/ave_8-9.pth

Works on an interrupted run: the per-epoch metrics come from the reporter state in
``exp_dir/checkpoint.pth``, and only epochs whose ``{epoch}epoch.pth`` exists are used.
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_ser.utils.checkpoints import (
    average_checkpoint_files,
    average_nbest_checkpoints,
    infer_mode,
)
from espnet_ser.utils.cli import setup_logging, str2bool


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return n


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Average the N best epoch checkpoints of an ESPnet experiment directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--exp_dir",
        type=str,
        default=None,
        help="Experiment directory with checkpoint.pth and {epoch}epoch.pth files",
    )
    parser.add_argument(
        "--metric",
        type=str,
        default="valid.acc",
        help="Reported metric <phase>.<key> used to rank epochs (valid.acc, valid.loss, ...)",
    )
    parser.add_argument("--nbest", type=_positive_int, default=10, help="Epochs to average")
    parser.add_argument(
        "--mode",
        type=str,
        choices=["max", "min"],
        default=None,
        help="max: larger is better; min: smaller is better. "
        "Default: min for names with loss/cer/wer/eer/mse..., else max",
    )
    parser.add_argument(
        "--out",
        type=str,
        default=None,
        help="Output model file (default: <exp_dir>/<metric>.ave_<nbest>best.pth); "
        "required with --checkpoints",
    )
    parser.add_argument(
        "--link",
        type=str2bool,
        default=True,
        help="Also point <metric>.ave.pth (beside --out) at the averaged model",
    )
    parser.add_argument(
        "--checkpoints",
        type=str,
        nargs="+",
        default=None,
        help="Average exactly these model files instead of selecting by --metric",
    )
    parser.add_argument("--log_level", type=str, default="INFO", help="Logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    if args.checkpoints is not None:
        if args.out is None:
            parser.error("--out is required with --checkpoints")
    elif args.exp_dir is None:
        parser.error("give --exp_dir (select by --metric) or --checkpoints")
    logging.info(" ".join(["average_checkpoints"] + (cmd if cmd is not None else sys.argv[1:])))

    try:
        if args.checkpoints is not None:
            average_checkpoint_files(args.checkpoints, args.out)
        else:
            mode = args.mode or infer_mode(args.metric)
            average_nbest_checkpoints(
                args.exp_dir,
                metric=args.metric,
                nbest=args.nbest,
                mode=mode,
                out=args.out,
                link=args.link,
            )
    except (OSError, ValueError, KeyError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
