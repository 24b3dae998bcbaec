#!/usr/bin/env python3
"""Global CMVN statistics of a feats.scp, the npz of ``normalize: global_mvn``'s stats_file::

    python -m espnet_ser.bin.compute_cmvn \\
        --feats_scp dump/fbank/train/feats.scp --out dump/fbank/train/feats_stats.npz
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet_ser.features.cmvn import compute_cmvn_stats
from espnet_ser.features.extractor import FeatureError
from espnet_ser.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Compute global mean/variance statistics (ESPnet GlobalMVN npz)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--log_level", default="INFO", choices=LOG_LEVELS)
    add("--feats_scp", required=True, help="feats.scp of the training set")
    add("--out", required=True, help="output npz")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    try:
        stats = compute_cmvn_stats(args.feats_scp)
        stats.save(args.out)
    except (FeatureError, OSError) as e:
        logging.error(str(e))
        sys.exit(1)
    mean, std = stats.mean_std()
    logging.info(f"wrote {args.out}: {stats.count} frames, dim {len(mean)}, mean in "
                 f"[{mean.min():.3f}, {mean.max():.3f}], std in [{std.min():.3f}, {std.max():.3f}]")


if __name__ == "__main__":
    main()
