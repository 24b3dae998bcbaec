#!/usr/bin/env python3
"""Stage 6: score emotion-token hypotheses against references.

    python -m espnet_ser.bin.score --ref data/test/text --hyp exp/x/decode/test/text \
        --outdir exp/x/decode/test/score [--emotions "ang hap neu sad"]

Writes OUTDIR/result.txt, scores.json (see :mod:`espnet_ser.scoring.results`) and
confusion.png; nothing when an input is malformed.
"""

import logging
from typing import List, Optional

from espnet_ser.scoring.results import score, write_score_outputs
from espnet_ser.scoring.tables import fmt_rate
from espnet_ser.utils.cli import LOG_LEVELS, doc_parser, exit_on_error, setup_logging, str2bool


def get_parser():
    parser = doc_parser("Score joint ASR + emotion hypotheses (WER with/without the emotion token, "
                        "per-emotion WER, WW/UW, WA/UA, confusion matrix).", show_defaults=True)
    parser.add_argument("--ref", required=True, help="reference Kaldi text with emotion tokens")
    parser.add_argument("--hyp", required=True, help="hypothesis Kaldi text with emotion tokens")
    parser.add_argument("--outdir", required=True, help="where result.txt, scores.json and "
                        "confusion.png are written")
    parser.add_argument("--emotions", default=None,
                        help='class order of the tables, e.g. "ang hap neu sad" (default: the '
                        "sorted reference classes); every reference emotion must be listed")
    parser.add_argument("--allow_missing", type=str2bool, default=False,
                        help="score reference utterances missing from HYP as empty hypotheses "
                        "(all words deleted, emotion none) instead of failing")
    parser.add_argument("--utt_subset", default=None, help="file whose first column lists the "
                        "utterances to score (e.g. unseen sentences)")
    parser.add_argument("--plot", type=str2bool, default=True, help="draw confusion.png")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS, help="logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    with exit_on_error("score", errors=(ValueError,)):
        result = score(args.ref, args.hyp, emotions=args.emotions,
                       allow_missing=args.allow_missing, utt_subset=args.utt_subset)
    write_score_outputs(result, args.outdir, plot=args.plot)
    s = result.scores
    logging.info(f"{s['num_utts']} utterances: WER {fmt_rate(s['wer'])} (no emotion token "
                 f"{fmt_rate(s['wer_no_emo'])}), UW {fmt_rate(s['uw'])}, WA {fmt_rate(s['wa'])}, "
                 f"UA {fmt_rate(s['ua'])}; written to {args.outdir}")
    if s["num_missing_hyp"] or s["num_failed_decodes"]:
        logging.warning(f"scored as empty: {s['num_missing_hyp']} utterances without a "
                        f"hypothesis, {s['num_failed_decodes'] or 0} failed decodes")


if __name__ == "__main__":
    main()
