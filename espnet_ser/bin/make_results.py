#!/usr/bin/env python3
"""Collect a recipe's scores into an ESPnet-style RESULTS.md.

    python -m espnet_ser.bin.make_results --recipe_dir egs/mini_emo \
        --out egs/mini_emo/RESULTS.md [--notes egs/mini_emo/local/results_notes.md]

Reads ``exp/<exp>/decode_<tag>/<set>/score/scores.json`` and emotion-only
``exp/<exp>/<set>/scores.json`` files and writes, after an environment block, one section
per experiment with sclite rows (with and without the emotion token), per-emotion WER
(WW / UW) and emotion accuracy (WA / UA / per class) tables. ``--notes`` is inserted
verbatim after the title.
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from espnet_ser.scoring.results import ScoringError, find_score_files, write_results_md
from espnet_ser.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write an ESPnet-style RESULTS.md from a recipe's scores.json files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--recipe_dir", required=True, help="recipe directory holding exp/")
    parser.add_argument("--out", default=None, help="output file (default: RECIPE_DIR/RESULTS.md)")
    parser.add_argument("--notes", default=None,
                        help="hand-written markdown inserted verbatim after the title")
    parser.add_argument("--log_level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    recipe_dir = Path(args.recipe_dir)
    if not recipe_dir.is_dir():
        raise SystemExit(f"espnet_ser.bin.make_results: error: {recipe_dir}: not a directory")
    out = Path(args.out) if args.out else recipe_dir / "RESULTS.md"
    try:
        write_results_md(recipe_dir, out, notes_file=args.notes)
    except (ScoringError, ValueError, OSError) as e:
        logging.error(str(e))
        raise SystemExit(f"espnet_ser.bin.make_results: error: {e}")
    n = len(find_score_files(recipe_dir))
    logging.info(f"wrote {out} from {n} scores.json files")


if __name__ == "__main__":
    main()
