"""Stage 5 of SER recipes: predict the emotion of every utterance of a set.

Job J of N (``--nj N --job J``) predicts one part; ``--merge`` joins them. Outputs:
``emotion`` (class code, "none" if failed), ``posterior`` (``ang:0.0123 ...`` in class
order), ``text`` (CTC greedy transcript, CTC models only), ``failed`` (utt reason).
``--speech_scp``: a Kaldi scp of the model's input (``--speech_type kaldi_ark``) or a wav.scp
of mono audio (``sound``; ``--fs`` checks the rate). A personality-fusion model needs
``--personality data/<set>/utt2personality``. More than ``--max_failures`` failures
(per job or merged), or nothing predicted, exits non-zero.

    python -m espnet_ser.bin.ser_inference --exp_dir exp/ser_x \
        --model_file exp/ser_x/valid.acc.ave.pth --speech_scp dump/fbank/test/feats.scp \
        --output_dir exp/ser_x/decode_best/test --nj 4 --job 1
    python -m espnet_ser.bin.ser_inference ... --nj 4 --merge
"""

import argparse
import time
from pathlib import Path
from typing import Dict, List

from espnet_ser.data.datadir import read_kaldi_map, read_personality
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import format_posterior, job_parser, load_mat, run_or_merge, write_outcomes

OUTPUTS = ("emotion", "posterior")
TEXT = "text"
FAILED_VALUES = {"emotion": "none", "posterior": "", "text": ""}


def get_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__, "predict")
    p.add_argument("--speech_scp", type=Path, required=True, help="scp of the set's model input")
    p.add_argument("--speech_type", default="kaldi_ark", choices=["kaldi_ark", "sound"])
    p.add_argument("--fs", type=int, default=None,
                   help="expected sample rate of --speech_type sound files (default: no check)")
    p.add_argument("--personality", type=Path, default=None,
                   help="utt2personality of the set (speaker then listener O C E A N), for a "
                   "model with a personality fusion")
    p.add_argument("--batch_size", type=int, default=1,
                   help="utterances per forward pass (sorted by length, zero-padded)")
    return p


def loader(args, utt: str, value: str):
    """A function reading the model input of one utterance (raises naming the file)."""

    def load_sound():  # mono, no commands; the rate is checked here, not resampled
        from espnet_ser.features.audio import read_utterance

        wave, rate = read_utterance(utt, value, str(args.speech_scp), None)
        if args.fs is not None and rate != args.fs:
            raise RuntimeError(f"{value}: sample rate {rate} Hz, expected {args.fs} Hz")
        return wave

    return (lambda: load_mat(args.speech_scp, value)) if args.speech_type == "kaldi_ark" else load_sound


def predict_part(args, utts: List[str], scp: Dict[str, str], out: Path) -> None:
    import torch

    from espnet_ser.ser.inference import Speech2Emotion

    torch.set_num_threads(args.num_threads)
    s2e = Speech2Emotion.from_exp_dir(args.exp_dir, args.model_file, device=args.device)
    traits = None
    if s2e.needs_personality:
        if args.personality is None:
            raise ValueError(f"{args.exp_dir}: the model fuses personalities: give --personality "
                             "data/<set>/utt2personality")
        traits = read_personality(args.personality)
    start = time.time()
    got = s2e.predict_many([(u, loader(args, u, scp[u])) for u in utts], batch_size=args.batch_size,
                           personality=traits)

    def outcome(utt):
        r = got[utt]
        if isinstance(r, Exception):
            raise r
        return dict(emotion=r.emotion, posterior=format_posterior(r.posterior), text=r.text)

    if (out / TEXT).exists() and not s2e.has_ctc:
        (out / TEXT).unlink()  # left by an earlier run with another model
    names = OUTPUTS + ((TEXT,) if s2e.has_ctc else ())
    write_outcomes(out, utts, outcome, {n: FAILED_VALUES[n] for n in names}, args.max_failures,
                   "prediction", "predicted", start)


def read_scp(args) -> Dict[str, str]:
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    return read_kaldi_map(args.speech_scp, check_sorted=False)


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    run_or_merge(args, lambda: read_scp(args), OUTPUTS,
                 lambda utts, scp, out: predict_part(args, utts, scp, out), optional=(TEXT,),
                 job_kind="prediction", done="predicted", failed_note="failed")


if __name__ == "__main__":
    main()
