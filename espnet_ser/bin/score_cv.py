#!/usr/bin/env python3
"""Stage 6 across folds: one table (per fold, mean, pooled) from each fold's scores.json.

    python -m espnet_ser.bin.score_cv --outdir exp/asr_x_cv/decode_decode/cv_test/score \
        --names "fold1 fold2 fold3 fold4 fold5" \
        exp/asr_x_fold1/decode_decode/fold1_test/score/scores.json ...

or ``--recipe_dir . --folds "1 2 3 4 5"`` for every ``exp/<name>_fold<k>`` experiment, written to
``exp/<name>_cv/decode_<tag>/cv_test/score`` (see :mod:`espnet_ser.scoring.cv`).
"""

import logging
from typing import List, Optional

from espnet_ser.scoring.cv import fold_jobs, summarize_folds
from espnet_ser.utils.cli import doc_parser, exit_on_error, setup_logging


def get_parser():
    p = doc_parser(__doc__)
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
    for outdir, names, scores in fold_jobs("score_cv", args, args.scores, ("files", "fold scores")):
        with exit_on_error("score_cv"):
            summary = summarize_folds(scores, outdir, names=names, emotions=emotions)
        m, p = summary["mean"], summary["pooled"]
        logging.info(f"{outdir}: {len(scores)} folds; mean WA {m['wa']} UA {m['ua']} WW {m['ww']}; "
                     f"pooled WA {p['wa']} UA {p['ua']} WW {p['ww']}")


if __name__ == "__main__":
    main()
