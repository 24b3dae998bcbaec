#!/usr/bin/env python3
"""Pack a trained model into an ESPnet model archive (run from the recipe directory).

    python -m espnet_ser.bin.pack_model --exp_dir exp/x \\
        --model_file exp/x/valid.acc.ave_10best.pth --out exp/x/packed_model.zip \\
        --decode_config conf/decode.yaml
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.packing import pack_model


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Pack a trained model into an ESPnet model "
                                     "archive", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--exp_dir", required=True, help="Experiment directory")
    add("--config", help="Training config (default: <exp_dir>/config.yaml)")
    add("--model_file", help="Model state dict to pack (default: <exp_dir>/valid.acc.ave.pth)")
    add("--out", help="Archive to write: .zip, .tar, .tgz/.tar.gz, .tbz2/.tar.bz2, "
        ".txz/.tar.xz (default: <exp_dir>/packed_model.zip)")
    add("--decode_config", help="Decoding config to include")
    add("--option", action="append", default=[],
        help="Extra file or directory to include (repeatable), as in espnet2.bin.pack")
    add("--log_level", default="INFO", help="Logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    exp_dir = Path(args.exp_dir)
    out = Path(args.out or exp_dir / "packed_model.zip")
    try:
        if not exp_dir.is_dir():
            raise FileNotFoundError(f"{exp_dir}: experiment directory does not exist")
        result = pack_model(config=args.config or exp_dir / "config.yaml",
                            model_file=args.model_file or exp_dir / "valid.acc.ave.pth",
                            out=out, decode_config=args.decode_config, option=args.option)
    except (OSError, ValueError) as e:
        logging.error(str(e))
        sys.exit(1)
    logging.info(f"{out}: " + ", ".join(result["files"]))


if __name__ == "__main__":
    main()
