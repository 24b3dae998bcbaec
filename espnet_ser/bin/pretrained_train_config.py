"""Write the training config for fine-tuning a model made by ``extend_pretrained``.

Example: ``python -m espnet_ser.bin.pretrained_train_config --pretrained_dir exp/pretrained_x
--train_config conf/tuning/train.yaml --output exp/asr_x/train_config.yaml``. Architecture,
tokenizer and ``init_param`` come from ``<pretrained_dir>/config.yaml`` (listed atop the
output), the rest from the training config. ``--check true`` writes nothing.
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained_dir", required=True,
                   help="output directory of espnet_ser.bin.extend_pretrained")
    p.add_argument("--train_config", required=True, help="the recipe's training YAML")
    p.add_argument("--output", default=None, help="merged training YAML to write")
    p.add_argument("--check", type=str2bool, default=False,
                   help="log the merge without writing (no --output needed)")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    from espnet_ser.asr.pretrained import PretrainedError, write_pretrained_train_config
    if not args.check and args.output is None:
        logging.error("--output is required (or --check true)")
        sys.exit(2)
    try:
        write_pretrained_train_config(args.pretrained_dir, args.train_config,
                                      None if args.check else args.output)
    except PretrainedError as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
