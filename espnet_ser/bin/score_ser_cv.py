#!/usr/bin/env python3
"""Stage 6 across cross-validation folds of a SER recipe: pool the folds' predictions.

    python -m espnet_ser.bin.score_ser_cv --outdir exp/ser_x_cv/decode_best/cv_test/score \
        --score_dirs exp/ser_x_fold{1,2,3,4,5}/decode_best/fold*_test/score [--names "fold1 ..."]

Each SCORE_DIR is a ``score_ser`` output; writes OUTDIR/result.txt (per-fold table, mean and
sample std of WA / UA, the pooled report), scores.json (``"kind": "ser_cv"``), predictions and
confusion.png. ``--recipe_dir . --folds "1 2"`` pools every fold of every experiment of a recipe.
"""

import logging
from typing import List, Optional

from espnet_ser.scoring.cv import fold_jobs
from espnet_ser.scoring.ser import kaldi_lines, score_ser_cv, write_ser_cv_outputs
from espnet_ser.utils.cli import doc_parser, exit_on_error, setup_logging, str2bool


def get_parser():
    p = doc_parser(__doc__)
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
    flags = ("--score_dirs", "--score_dirs")
    for outdir, names, dirs in fold_jobs("score_ser_cv", args, args.score_dirs, flags, kind="ser"):
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
