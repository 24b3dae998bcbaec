#!/usr/bin/env python3
"""Stage 6 across folds: one table (per fold, mean, pooled) from each fold's scores.json.

    python -m espnet_ser.bin.score_cv --outdir exp/asr_x_cv/decode_decode/cv_test/score \
        --names "fold1 fold2 fold3 fold4 fold5" \
        exp/asr_x_fold1/decode_decode/fold1_test/score/scores.json ...

or ``--recipe_dir . --folds "1 2 3 4 5"`` for every ``exp/<name>_fold<k>`` experiment of a
recipe (fold k decodes ``fold<k>_test``), written to ``exp/<name>_cv/decode_<tag>/cv_test/score``.
See :mod:`espnet_ser.scoring.cv` for what mean and pooled mean.
"""

import argparse
import logging
from typing import List, Optional

from espnet_ser.scoring.cv import find_fold_groups, summarize_folds
from espnet_ser.scoring.results import exit_on_error
from espnet_ser.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", nargs="*", help="scores.json of each fold")
    p.add_argument("--outdir", default=None, help="pooled scores + cv_summary.{md,json}")
    p.add_argument("--recipe_dir", default=None, help="summarise every experiment's folds")
    p.add_argument("--folds", default="1 2 3 4 5", help="fold numbers (with --recipe_dir)")
    p.add_argument("--names", default=None, help="space-separated fold names (default: set names)")
    p.add_argument("--emotions", default=None, help="class order, e.g. 'ang hap neu sad'")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    emotions = args.emotions.split() if args.emotions else None
    if args.recipe_dir:
        if args.scores or args.outdir:
            raise SystemExit("espnet_ser.bin.score_cv: error: --recipe_dir excludes files and --outdir")
        jobs = [(out, [n for n, _ in g], [p for _, p in g])
                for out, g in find_fold_groups(args.recipe_dir, args.folds.split()).items()]
        if not jobs:
            logging.warning(f"{args.recipe_dir}: no exp/*_fold<k>/decode_*/fold<k>_test scores yet")
    else:
        if not args.scores or not args.outdir:
            raise SystemExit("espnet_ser.bin.score_cv: error: give fold scores and --outdir, or --recipe_dir")
        jobs = [(args.outdir, args.names.split() if args.names else None, args.scores)]
    for outdir, names, scores in jobs:
        with exit_on_error("score_cv"):
            summary = summarize_folds(scores, outdir, names=names, emotions=emotions)
        m, p = summary["mean"], summary["pooled"]
        logging.info(f"{outdir}: {len(scores)} folds; mean WA {m['wa']} UA {m['ua']} WW {m['ww']}; "
                     f"pooled WA {p['wa']} UA {p['ua']} WW {p['ww']}")


if __name__ == "__main__":
    main()
