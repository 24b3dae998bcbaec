#!/usr/bin/env python3
"""Stage 6 across cross-validation folds of a SER recipe: pool the folds' predictions.

    python -m espnet_ser.bin.score_ser_cv --outdir exp/ser_x_cv/decode_best/cv_test/score \
        --score_dirs exp/ser_x_fold{1,2,3,4,5}/decode_best/fold*_test/score \
        [--names "fold1 fold2 fold3 fold4 fold5"]

Each SCORE_DIR is a ``score_ser`` output. Writes OUTDIR/result.txt (per-fold table, mean and
sample std of WA / UA, the pooled report), scores.json (``"kind": "ser_cv"``, see
:mod:`espnet_ser.scoring.ser`), predictions and confusion.png. ``--recipe_dir . --folds "1 2"``
pools every ``exp/<name>_fold<k>/decode_<tag>/fold<k>_test/score`` of a recipe into
``exp/<name>_cv/decode_<tag>/cv_test/score``.
"""

import argparse
import logging
from typing import List, Optional

from espnet_ser.scoring.cv import find_fold_groups
from espnet_ser.scoring.results import exit_on_error
from espnet_ser.scoring.ser import kaldi_lines, score_ser_cv, write_ser_cv_outputs
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--score_dirs", nargs="+", default=None, help="score_ser output of each fold")
    p.add_argument("--names", default=None, help="space-separated fold names "
                   "(default: the set name of each score directory)")
    p.add_argument("--outdir", default=None)
    p.add_argument("--recipe_dir", default=None,
                   help="pool every experiment's folds exp/<name>_fold<k>/decode_<tag>/"
                   "fold<k>_test/score into exp/<name>_cv/decode_<tag>/cv_test/score")
    p.add_argument("--folds", default="1 2 3 4 5", help="fold numbers (with --recipe_dir)")
    p.add_argument("--plot", type=str2bool, default=True, help="draw confusion.png")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    if args.recipe_dir:
        if args.score_dirs or args.outdir:
            raise SystemExit("espnet_ser.bin.score_ser_cv: error: --recipe_dir excludes "
                             "--score_dirs and --outdir")
        groups = find_fold_groups(args.recipe_dir, args.folds.split(), kind="ser")
        jobs = [(out, [n for n, _ in g], [p.parent for _, p in g]) for out, g in groups.items()]
        if not jobs:
            logging.warning(f"{args.recipe_dir}: no SER scores exp/*_fold<k>/decode_*/"
                            "fold<k>_test/score yet")
    else:
        if not args.score_dirs or not args.outdir:
            raise SystemExit("espnet_ser.bin.score_ser_cv: error: give --score_dirs and "
                             "--outdir, or --recipe_dir")
        jobs = [(args.outdir, args.names.split() if args.names else None, args.score_dirs)]
    for outdir, names, dirs in jobs:
        with exit_on_error("score_ser_cv"):
            scores, pooled = score_ser_cv(dirs, names)
        write_ser_cv_outputs(scores, pooled, outdir, plot=args.plot)
        logging.info(f"{outdir}: {scores['num_folds']} folds, {scores['n']} utterances; "
                     f"per-fold WA {scores['wa_mean']:.2f} (std {scores['wa_std'] or 0:.2f}), "
                     f"UA {scores['ua_mean']:.2f} (std {scores['ua_std'] or 0:.2f})")
        for line in kaldi_lines(scores):
            logging.info("pooled " + line)


if __name__ == "__main__":
    main()
