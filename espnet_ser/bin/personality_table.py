#!/usr/bin/env python3
"""Stage 6 of egs/pa_iemocap: Table 2 of the personality paper from the rows run so far.

    python -m espnet_ser.bin.personality_table --exp_dir exp --out_dir exp/table2

Reads exp/ser_<prefix><N>_cv/score/scores.json (ground-truth traits) and
exp/ser_<prefix><N>_cv_pred/score/scores.json (predicted traits) of rows N = 0..12, written
by ./run.sh; writes OUT_DIR/table2.{txt,md,json}: UA and ACC averaged over the folds, the
relative improvement over row 0, and the per-fold values. A row not run is listed as such.
"""

import logging
from typing import List, Optional

from espnet_ser.scoring.personality import write_table2
from espnet_ser.utils.cli import doc_parser, exit_on_error, setup_logging


def get_parser():
    p = doc_parser(__doc__)
    p.add_argument("--exp_dir", default="exp", help="the recipe's experiment directory")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--config_prefix", default="train_ser_hubert_row",
                   help="config name of a row without its number")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    with exit_on_error("personality_table"):
        t = write_table2(args.exp_dir, args.out_dir, args.config_prefix)
    done = [f"{r}{'' if m == 'gt' else ' pred'}" for r, e in t.items() for m in ("gt", "pred")
            if e[m] is not None and not (r == 0 and m == "pred")]
    logging.info(f"{args.out_dir}/table2.txt: rows run: {', '.join(done) or 'none'}")


if __name__ == "__main__":
    main()
