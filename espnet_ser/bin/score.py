#!/usr/bin/env python3
"""Stage 6: score emotion-token hypotheses against references.

    python -m espnet_ser.bin.score --ref data/test/text --hyp exp/x/decode/test/text \
        --outdir exp/x/decode/test/score [--emotions "ang hap neu sad"]

REF and HYP are Kaldi text files (``<utt> <words...>``) with the emotion token (``<ang>``)
inline, anywhere among the words. A reference needs exactly one; of several tokens in a
hypothesis the last is the prediction, and a hypothesis without one counts as wrong.

Writes ``OUTDIR/result.txt`` (sclite-style tables: WER with and without the emotion token,
per reference emotion, WW / UW, WA / UA, confusion matrix, per-utterance alignments),
``OUTDIR/scores.json`` (schema in :mod:`espnet_ser.scoring.results`) and
``OUTDIR/confusion.png``. Nothing is written when an input is malformed.

A reference utterance without a hypothesis line fails the run (naming the utterance and
HYP) unless ``--allow_missing true``, which scores it as an empty hypothesis (all words
deleted, emotion "none") and counts it as ``num_missing_hyp``. Utterances listed in a
``failed`` file next to HYP (written by decoding) are present with empty hypotheses;
their number is ``num_failed_decodes`` in scores.json and result.txt.
"""

import argparse
import logging
from typing import List, Optional

from espnet_ser.data.datadir import DataDirError
from espnet_ser.scoring.results import ScoringError, score, write_score_outputs
from espnet_ser.scoring.tables import fmt_rate
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score joint ASR + emotion hypotheses (WER with/without the emotion "
        "token, per-emotion WER, WW/UW, WA/UA, confusion matrix).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ref", required=True, help="reference Kaldi text with emotion tokens")
    parser.add_argument("--hyp", required=True, help="hypothesis Kaldi text with emotion tokens")
    parser.add_argument("--outdir", required=True, help="where result.txt, scores.json and "
                        "confusion.png are written")
    parser.add_argument(
        "--emotions",
        default=None,
        help='class order of the tables, e.g. "ang hap neu sad" (default: the sorted '
        "reference classes); every reference emotion must be listed",
    )
    parser.add_argument(
        "--allow_missing",
        type=str2bool,
        default=False,
        help="score reference utterances missing from HYP as empty hypotheses (all words "
        "deleted, emotion none) instead of failing",
    )
    parser.add_argument(
        "--utt_subset",
        default=None,
        help="file whose first column lists the utterances to score (e.g. unseen sentences)",
    )
    parser.add_argument("--plot", type=str2bool, default=True, help="draw confusion.png")
    parser.add_argument("--log_level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    try:
        result = score(
            args.ref,
            args.hyp,
            emotions=args.emotions,
            allow_missing=args.allow_missing,
            utt_subset=args.utt_subset,
        )
    except (ScoringError, DataDirError, ValueError) as e:
        logging.error(str(e))
        raise SystemExit(f"espnet_ser.bin.score: error: {e}")
    write_score_outputs(result, args.outdir, plot=args.plot)
    s = result.scores
    logging.info(
        f"{s['num_utts']} utterances: WER {fmt_rate(s['wer'])} (no emotion token "
        f"{fmt_rate(s['wer_no_emo'])}), UW {fmt_rate(s['uw'])}, WA {fmt_rate(s['wa'])}, "
        f"UA {fmt_rate(s['ua'])}; written to {args.outdir}"
    )
    if s["num_missing_hyp"] or s["num_failed_decodes"]:
        logging.warning(
            f"scored as empty: {s['num_missing_hyp']} utterances without a hypothesis, "
            f"{s['num_failed_decodes'] or 0} failed decodes"
        )


if __name__ == "__main__":
    main()
