#!/usr/bin/env python3
"""Collect a recipe's scores into an ESPnet-style RESULTS.md.

    python -m espnet_ser.bin.make_results --recipe_dir egs/mini_emo \
        --out egs/mini_emo/RESULTS.md [--notes egs/mini_emo/local/results_notes.md]
"""

import logging
from pathlib import Path
from typing import List, Optional

from espnet_ser.scoring.results import find_score_files, write_results_md
from espnet_ser.utils.cli import LOG_LEVELS, doc_parser, exit_on_error, setup_logging


def get_parser():
    p = doc_parser("Write an ESPnet-style RESULTS.md from a recipe's scores.json files.",
                   show_defaults=True)
    p.add_argument("--recipe_dir", required=True, help="recipe directory holding exp/")
    p.add_argument("--out", default=None, help="output file (default: RECIPE_DIR/RESULTS.md)")
    p.add_argument("--notes", default=None, help="hand-written markdown inserted verbatim after "
                   "the title")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    recipe_dir = Path(args.recipe_dir)
    if not recipe_dir.is_dir():
        raise SystemExit(f"espnet_ser.bin.make_results: error: {recipe_dir}: not a directory")
    out = Path(args.out) if args.out else recipe_dir / "RESULTS.md"
    with exit_on_error("make_results"):
        write_results_md(recipe_dir, out, notes_file=args.notes)
    n = len(find_score_files(recipe_dir))
    logging.info(f"wrote {out} from {n} scores.json files")


if __name__ == "__main__":
    main()
