#!/usr/bin/env python3
"""Pack a trained model into an ESPnet model archive.

Example (run from the recipe directory, where training ran):
    python -m espnet_ser.bin.pack_model --exp_dir exp/x \\
        --model_file exp/x/valid.acc.ave_10best.pth --out exp/x/packed_model.zip \\
        --decode_config conf/decode.yaml

The archive is written by ``espnet2.main_funcs.pack_funcs.pack``: ``meta.yaml`` lists
``asr_train_config`` (``exp/x/config.yaml``) and ``asr_model_file``; the files the config
refers to (token list, BPE model, normalisation stats, ...) are included, and ESPnet's
``unpack`` (or ``espnet_ser.utils.checkpoints.unpack_model``) rewrites their paths in the
unpacked config. The decode config is stored as ``decode.yaml`` beside ``config.yaml``;
``<model_file>.json`` (written by average_checkpoints) and ``exp_dir/RESULTS.md`` are
included when present.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_ser.utils.checkpoints import pack_model
from espnet_ser.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Pack config.yaml, a model file and the files the config refers to "
        "into an ESPnet model archive",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--exp_dir", type=str, required=True, help="Experiment directory")
    parser.add_argument(
        "--config",
        type=str,
        default=None,
        help="Training config (default: <exp_dir>/config.yaml)",
    )
    parser.add_argument(
        "--model_file",
        type=str,
        default=None,
        help="Model state dict to pack (default: <exp_dir>/valid.acc.ave.pth)",
    )
    parser.add_argument(
        "--out",
        type=str,
        default=None,
        help="Archive to write: .zip, .tar, .tgz/.tar.gz, .tbz2/.tar.bz2, .txz/.tar.xz "
        "(default: <exp_dir>/packed_model.zip)",
    )
    parser.add_argument(
        "--decode_config", type=str, default=None, help="Decoding config to include"
    )
    parser.add_argument(
        "--option",
        type=str,
        action="append",
        default=[],
        help="Extra file or directory to include (repeatable), as in espnet2.bin.pack",
    )
    parser.add_argument("--log_level", type=str, default="INFO", help="Logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    exp_dir = Path(args.exp_dir)
    config = Path(args.config) if args.config else exp_dir / "config.yaml"
    model_file = Path(args.model_file) if args.model_file else exp_dir / "valid.acc.ave.pth"
    out = Path(args.out) if args.out else exp_dir / "packed_model.zip"
    try:
        if not exp_dir.is_dir():
            raise FileNotFoundError(f"{exp_dir}: experiment directory does not exist")
        result = pack_model(
            config=config,
            model_file=model_file,
            out=out,
            decode_config=args.decode_config,
            option=args.option,
        )
    except (OSError, ValueError) as e:
        logging.error(str(e))
        sys.exit(1)
    logging.info(f"{out}: " + ", ".join(result["files"]))


if __name__ == "__main__":
    main()
