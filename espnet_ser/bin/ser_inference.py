"""Stage 5 of SER recipes: predict the emotion of every utterance of a set.

One job predicts one contiguous part (``--nj N --job J``); ``--merge`` joins the parts into
``--output_dir``: ``emotion`` (class code, "none" if failed), ``posterior`` (``ang:0.0123 ...``
in class order), ``text`` (CTC greedy transcript, CTC models only), ``failed`` (utt reason).
``--speech_scp`` is a Kaldi scp of what the model was trained on (``--speech_type
kaldi_ark``) or a wav.scp of mono audio (``sound``, ``--fs`` checks the rate). A job, or the
merge, exits non-zero with more than ``--max_failures`` failures; the merge also when none
was predicted.

    python -m espnet_ser.bin.ser_inference --exp_dir exp/ser_x \
        --model_file exp/ser_x/valid.acc.ave.pth --speech_scp dump/fbank/test/feats.scp \
        --output_dir exp/ser_x/decode_best/test --nj 4 --job 1
    python -m espnet_ser.bin.ser_inference ... --nj 4 --merge
"""

import argparse
import logging
import time
from pathlib import Path
from typing import Dict, List

from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import job_parser, run_or_merge, write_part

OUTPUTS = ("emotion", "posterior")
TEXT = "text"
FAILED_VALUES = {"emotion": "none", "posterior": "", "text": ""}


def get_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__, "predict")
    p.add_argument("--speech_scp", type=Path, required=True, help="scp of the set's model input")
    p.add_argument("--speech_type", default="kaldi_ark", choices=["kaldi_ark", "sound"])
    p.add_argument("--fs", type=int, default=None,
                   help="expected sample rate of --speech_type sound files (default: no check)")
    p.add_argument("--batch_size", type=int, default=1,
                   help="utterances per forward pass (sorted by length, zero-padded)")
    return p


def loader(args, utt: str, value: str):
    """A function reading the model input of one utterance (raises naming the file)."""

    def load_ark():
        import kaldiio

        try:
            return kaldiio.load_mat(value)
        except Exception as e:
            raise RuntimeError(f"{args.speech_scp}: cannot read {value}: "
                               f"{type(e).__name__}: {e}") from e

    def load_sound():  # mono, no commands; the rate is checked here, not resampled
        from espnet_ser.features.audio import read_utterance

        wave, rate = read_utterance(utt, value, str(args.speech_scp), None)
        if args.fs is not None and rate != args.fs:
            raise RuntimeError(f"{value}: sample rate {rate} Hz, expected {args.fs} Hz")
        return wave

    return load_ark if args.speech_type == "kaldi_ark" else load_sound


def reason_of(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def predict_part(args, utts: List[str], scp: Dict[str, str], out: Path) -> None:
    import torch

    from espnet_ser.ser.inference import Speech2Emotion

    torch.set_num_threads(args.num_threads)
    s2e = Speech2Emotion.from_exp_dir(args.exp_dir, args.model_file, device=args.device)
    names = OUTPUTS + ((TEXT,) if s2e.has_ctc else ())
    results = {name: {} for name in names}
    failed: Dict[str, str] = {}
    start = time.time()
    got = s2e.predict_many([(u, loader(args, u, scp[u])) for u in utts], batch_size=args.batch_size)
    for utt in utts:
        r = got[utt]
        if isinstance(r, Exception):
            failed[utt] = reason_of(r)
            logging.error(f"utterance {utt}: prediction failed: {failed[utt]}")
            for name in names:
                results[name][utt] = FAILED_VALUES[name]
            continue
        results["emotion"][utt] = r.emotion
        results["posterior"][utt] = " ".join(f"{k}:{v:.4f}" for k, v in r.posterior.items())
        if s2e.has_ctc:
            results[TEXT][utt] = r.text
    rate = len(utts) / max(time.time() - start, 1e-9)
    logging.info(f"predicted {len(utts)} utterances ({rate:.2f} utt/s)")
    if (out / TEXT).exists() and not s2e.has_ctc:
        (out / TEXT).unlink()  # left by an earlier run with another model
    write_part(out, len(utts), results, failed, args.max_failures)


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
