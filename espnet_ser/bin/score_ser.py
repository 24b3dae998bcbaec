#!/usr/bin/env python3
"""Stage 6 of SER recipes: score utterance-level emotion predictions.

    python -m espnet_ser.bin.score_ser --ref_emotion data/test/utt2emo \
        --hyp_emotion exp/ser_x/decode_best/test/emotion --emotions "ang hap neu sad" \
        [--ref_text data/test/text --hyp_text exp/ser_x/decode_best/test/text] \
        [--train_log exp/ser_x/train.log] --outdir exp/ser_x/decode_best/test/score

Writes in OUTDIR result.txt (``%WA`` / ``%UA`` / ``%macro-F1`` / ``%WER`` / ``%CER`` lines, the
classification report, the confusion matrix), scores.json (see :mod:`espnet_ser.scoring.ser`),
``predictions`` (``<utt> <ref> <hyp>``), confusion.png and, with ``--train_log``, curves.png /
curves.json. Hypotheses ``none`` count as errors; nothing is written for bad input.
"""

import json
import logging
from pathlib import Path
from typing import List, Optional

from espnet_ser.scoring.curves import parse_train_log, plot_curves
from espnet_ser.scoring.ser import kaldi_lines, score_ser, write_ser_outputs
from espnet_ser.utils.cli import doc_parser, exit_on_error, setup_logging, str2bool
from espnet_ser.utils.io import atomic_write_text


def get_parser():
    p = doc_parser(__doc__)
    p.add_argument("--ref_emotion", required=True, help="reference <utt> <code> (data/<set>/utt2emo)")
    p.add_argument("--hyp_emotion", required=True, help="hypotheses <utt> <code|none> "
                   "(ser_inference's emotion)")
    p.add_argument("--emotions", default=None, help='class order, e.g. "ang hap neu sad" '
                   "(default: the sorted reference classes)")
    p.add_argument("--ref_text", default=None, help="reference transcripts for WER / CER")
    p.add_argument("--hyp_text", default=None, help="CTC greedy transcripts (ser_inference's text)")
    p.add_argument("--train_log", default=None, help="ESPnet train.log: draw curves.png")
    p.add_argument("--outdir", required=True)
    p.add_argument("--plot", type=str2bool, default=True, help="draw confusion.png")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    outdir = Path(args.outdir)
    with exit_on_error("score_ser"):
        scores, predictions = score_ser(args.ref_emotion, args.hyp_emotion, args.emotions,
                                        args.ref_text, args.hyp_text)
        stats = parse_train_log(args.train_log) if args.train_log else None
        if args.train_log and not stats:
            logging.warning(f"{args.train_log}: no '<N>epoch results:' lines; no curves.png")
    if stats:
        plot_curves(stats, outdir / "curves.png", title=str(args.train_log))
        scores["curves"] = str(outdir / "curves.png")
        atomic_write_text(outdir / "curves.json", json.dumps(
            {str(e): v for e, v in stats.items()}, indent=2) + "\n")
    header = ["espnet_ser SER scoring report",
              f"  reference:  {args.ref_emotion}", f"  hypothesis: {args.hyp_emotion}"]
    if args.ref_text:
        header += [f"  reference transcripts:  {args.ref_text}",
                   f"  hypothesis transcripts: {args.hyp_text}"]
    write_ser_outputs(scores, predictions, outdir, header, plot=args.plot)
    for line in kaldi_lines(scores):
        logging.info(line)
    if scores["num_none"]:
        logging.warning(f"{scores['num_none']} hypotheses are 'none' (counted as errors), "
                        f"{scores['num_failed']} of them failed decodes")
    logging.info(f"written to {outdir}")


if __name__ == "__main__":
    main()
