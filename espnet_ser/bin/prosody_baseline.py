"""Prosody-only emotion baseline: utterance F0 / energy / rate statistics + logistic regression.

    python -m espnet_ser.bin.prosody_baseline --train_dir data/train --test_dir data/test \
        --outdir exp/prosody_baseline/test

writes ``outdir/hyp_utt2emo`` and ``outdir/scores.json`` (emotion metrics, train_acc, features).
"""

import json
import logging
import sys
from pathlib import Path

from espnet_ser.baseline.prosody import FEATURE_NAMES, ProsodyError, run_baseline
from espnet_ser.utils.cli import doc_parser, setup_logging, str2bool


def get_parser():
    p = doc_parser("Prosody-only emotion baseline (utterance statistics + logistic regression)",
                   show_defaults=True)
    p.add_argument("--train_dir", required=True, help="Kaldi data directory to fit on")
    p.add_argument("--test_dir", required=True, help="Kaldi data directory to predict")
    p.add_argument("--outdir", required=True, help="where hyp_utt2emo and scores.json go")
    p.add_argument("--nj", type=int, default=2, help="feature extraction processes")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 regularisation strength")
    p.add_argument("--plot", type=str2bool, default=False, help="also write confusion.png")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    from espnet_ser.data.datadir import DataDirError
    from espnet_ser.scoring.emotion import emotion_metrics, plot_confusion, row_normalised
    from espnet_ser.utils.io import atomic_write_text, write_kaldi_map

    try:
        res = run_baseline(args.train_dir, args.test_dir, nj=args.nj, c=args.C)
    except (DataDirError, ProsodyError, ValueError) as e:
        sys.exit(f"prosody_baseline: {e}")
    scores = emotion_metrics(res["ref"], res["hyp"], labels=res["labels"])
    scores.update(confusion_percent=row_normalised(scores["confusion"]), system="prosody_baseline",
                  train_dir=str(args.train_dir), test_dir=str(args.test_dir),
                  train_acc=res["train_acc"], features=list(FEATURE_NAMES))
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(outdir / "hyp_utt2emo", res["hyp"])
    atomic_write_text(outdir / "scores.json", json.dumps(scores, indent=2) + "\n")
    if args.plot:
        plot_confusion(scores["confusion"], outdir / "confusion.png",
                       title=f"prosody baseline: WA {scores['wa']:.1f}%  UA {scores['ua']:.1f}%")
    logging.info("%s: %d utts  WA %.2f%%  UA %.2f%%  (train acc %.2f%%)  per class: %s",
                 args.test_dir, scores["num_utts"], scores["wa"], scores["ua"],
                 res["train_acc"],
                 " ".join(f"{k} {v:.1f}" for k, v in scores["acc_per_emotion"].items()))


if __name__ == "__main__":
    main()
