"""Stage 5 of SER recipes: predict the emotion of every utterance of a set.

One job predicts one contiguous part of the set (``--nj N --job J``, as run.pl passes
``JOB``); ``--merge`` then joins the parts. Outputs in ``--output_dir``::

    emotion    <utt> <argmax class code, or "none">
    posterior  <utt> ang:0.0123 hap:0.9001 ...   (class order of the model, 4 decimals)
    text       <utt> <CTC greedy transcript>     (only for models with a CTC head)
    failed     <utt> <reason>                    (utterances that could not be predicted)

The input (``--speech_scp``) is what the model was trained on: with ``--speech_type
kaldi_ark`` (default) a Kaldi scp of ``(T, D)`` matrices (filterbanks, dumped hidden
states) or ``(T,)`` waveform vectors read with kaldiio; with ``--speech_type sound`` a
wav.scp of audio file paths read with soundfile (mono, float in [-1, 1]; with ``--fs``
the sample rate is checked).

An utterance that fails (unreadable input, too short for the encoder, non-finite
output) is still written: emotion ``none``, an empty posterior and transcript, and a line
in ``failed``. A job exits non-zero when it has more than ``--max_failures`` failures
(default: no limit); ``--merge`` exits non-zero (after writing the merged outputs) when
the set has more than ``--max_failures`` failures or no utterance was predicted. Errors
that concern the whole job (no model, bad arguments) fail it at once.

Example::

    python -m espnet_ser.bin.ser_inference --exp_dir exp/ser_x \
        --model_file exp/ser_x/valid.acc.ave.pth --speech_scp dump/fbank/test/feats.scp \
        --output_dir exp/ser_x/decode_best/test --nj 4 --job 1
    python -m espnet_ser.bin.ser_inference ... --nj 4 --merge
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List

from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import merge_parts, run_jobs, split_parts, write_part

OUTPUTS = ("emotion", "posterior")
TEXT = "text"
FAILED_VALUES = {"emotion": "none", "posterior": "", "text": ""}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", type=Path, required=True, help="training experiment (config.yaml)")
    p.add_argument("--model_file", type=Path, default=None,
                   help="model parameters (default: the averaged / best model in exp_dir)")
    p.add_argument("--speech_scp", type=Path, required=True, help="scp of the set's model input")
    p.add_argument("--speech_type", default="kaldi_ark", choices=["kaldi_ark", "sound"])
    p.add_argument("--fs", type=int, default=None,
                   help="expected sample rate of --speech_type sound files (default: no check)")
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--job", type=int, default=None, help="1-based part to predict (default: all)")
    p.add_argument("--merge", action="store_true", help="join the parts of a finished run")
    p.add_argument("--batch_size", type=int, default=1,
                   help="utterances per forward pass (sorted by length, zero-padded)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads per job")
    p.add_argument("--max_failures", type=int, default=None,
                   help="exit non-zero when more utterances than this fail (per job, and "
                   "over the set with --merge); default: no limit")
    return p


def loader(args, utt: str, value: str):
    """A function reading the model input of one utterance (raises naming the file)."""

    def load_ark():
        import kaldiio

        try:
            return kaldiio.load_mat(value)
        except Exception as e:
            raise RuntimeError(f"{args.speech_scp}: cannot read {value}: {type(e).__name__}: {e}") from e

    def load_sound():
        import soundfile

        if value.rstrip().endswith("|"):
            raise RuntimeError(f"{args.speech_scp}: pipes are not supported ({value})")
        try:
            wave, rate = soundfile.read(value, dtype="float32", always_2d=False)
        except Exception as e:
            raise RuntimeError(f"{args.speech_scp}: cannot read {value}: {type(e).__name__}: {e}") from e
        if wave.ndim != 1:
            raise RuntimeError(f"{value}: {wave.shape[1]} channels; expected mono audio")
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


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
        scp = read_kaldi_map(args.speech_scp, check_sorted=False)
        parts = split_parts(scp, args.nj)
        if args.merge:
            merge_parts(args.output_dir, args.nj, parts, OUTPUTS, args.max_failures,
                        optional=(TEXT,), job_kind="prediction", done="predicted",
                        failed_note="failed")
            return
        run_jobs(args.output_dir, args.nj, args.job, parts,
                 lambda utts, out: predict_part(args, utts, scp, out))
    except (OSError, ValueError, RuntimeError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
