#!/usr/bin/env python3
"""Drop too short / too long utterances from a train or valid set's shape files, writing
the filtered copies and ``filtered`` to ``--out_dir`` (espnet_ser.data.filter)."""

import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet_ser.data.filter import SET_ROLES, SUBSAMPLING_FACTORS, FilterError, filter_shape_files
from espnet_ser.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Filter a train/valid set's shape files by length and CTC feasibility",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--feats_shape", required=True, help="<utt> <frames>,<dim> file")
    parser.add_argument("--text_shape", required=True, help="<utt> <tokens>,<vocab> file")
    parser.add_argument("--out_dir", required=True, help="where the filtered copies go")
    parser.add_argument("--min_frames", type=int, default=None, help="fewest feature frames kept")
    parser.add_argument("--max_frames", type=int, default=None, help="most feature frames kept")
    parser.add_argument("--subsampling", type=int, default=4, choices=SUBSAMPLING_FACTORS,
                        help="the encoder's Conv2dSubsampling factor (input_layer)")
    parser.add_argument("--set_role", default="train", choices=SET_ROLES,
                        help="role of the set; test is refused")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    try:
        filter_shape_files(
            args.feats_shape, args.text_shape, args.out_dir,
            min_frames=args.min_frames, max_frames=args.max_frames,
            subsampling=args.subsampling, set_role=args.set_role,
        )
    except FilterError as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
