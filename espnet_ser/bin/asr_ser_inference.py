"""Stage 5: decode a dumped set with joint CTC/attention beam search.

One job decodes one contiguous part of the set (``--nj N --job J``, as run.pl passes
``JOB``); ``--merge`` then joins the parts. Outputs in ``--output_dir``::

    text               <utt> <hypothesis with the emotion token>
    utt2emo            <utt> <emitted emotion code, or "none">
    emotion_posterior  <utt> ang:0.0123 hap:0.9001 ...  (at the emitted position)
    beam_score         <utt> <beam search score of the best hypothesis>
    failed             <utt> <reason>  (utterances that could not be decoded)

An utterance whose decoding raises (unreadable features, input too short for the
encoder, a beam search error, a bad style input) is still written: empty ``text``,
``utt2emo`` "none", empty ``emotion_posterior``, ``beam_score`` "nan", and a line in
``failed``; the others are decoded. Each failure is logged with its utterance id and
the count is logged by every job and by ``--merge``. A job exits non-zero when it has
more than ``--max_failures`` failures (default: no limit); ``--merge`` exits non-zero
(after writing the merged outputs) when the set has more than ``--max_failures``
failures or no utterance was decoded. Errors that concern the whole job (the model
cannot be loaded, no style input file, utterances missing from it) fail it at once.

Example::

    python -m espnet_ser.bin.asr_ser_inference --exp_dir exp/asr_train \
        --model_file exp/asr_train/valid.acc.ave_10best.pth --decode_config conf/decode.yaml \
        --feats_scp dump/fbank/test/feats.scp --output_dir exp/asr_train/decode/test \
        --nj 4 --job 1

A style-conditioned model also needs its style input: ``--style_scp`` (the GST log-mel
dump of the set) for ``style_encoder: gst``, or ``--emotion_ids`` (reference emotion ids,
``data/token_*/<set>/emotion_id``) for the oracle upper bound ``style_encoder: oracle``;
the latter decodes with the reference label and writes ``ORACLE_EMOTION_CONDITIONING``
into the output directory to say so.
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List

from espnet_ser.data.datadir import atomic_write_text, read_kaldi_map
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import merge_parts, run_jobs, split_parts, write_part

OUTPUTS = ("text", "utt2emo", "emotion_posterior", "beam_score")
# values written for an utterance that could not be decoded
FAILED_VALUES = {"text": "", "utt2emo": "none", "emotion_posterior": "", "beam_score": "nan"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", type=Path, required=True, help="training experiment directory")
    p.add_argument("--model_file", type=Path, default=None,
                   help="model parameters (default: the averaged model in exp_dir)")
    p.add_argument("--decode_config", type=Path, default=None, help="decoding YAML")
    p.add_argument("--feats_scp", type=Path, required=True, help="feats.scp of the set to decode")
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument("--style_scp", type=Path, default=None,
                   help="GST features (feats.scp) for models with style_encoder: gst")
    p.add_argument("--emotion_ids", type=Path, default=None,
                   help="reference emotion ids for models with style_encoder: oracle")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--job", type=int, default=None, help="1-based part to decode (default: all)")
    p.add_argument("--merge", action="store_true", help="join the parts of a finished run")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads per job")
    p.add_argument("--max_failures", type=int, default=None,
                   help="exit non-zero when more utterances than this fail to decode "
                   "(per job, and over the set with --merge); default: no limit, the "
                   "failures are written to OUTPUT_DIR/failed and counted in the log")
    return p


def decode_part(args, utts: List[str], scp: Dict[str, str], out: Path) -> None:
    import torch

    from espnet_ser.asr.inference import Speech2TextEmotion

    torch.set_num_threads(args.num_threads)
    s2t = Speech2TextEmotion.from_exp_dir(args.exp_dir, args.model_file, args.decode_config,
                                          device=args.device)
    style_source = style_inputs(args, s2t.style_input_name, utts)
    results = {name: {} for name in OUTPUTS}
    failed: Dict[str, str] = {}
    start = time.time()
    for i, utt in enumerate(utts, 1):
        try:
            best = decode_one(args, s2t, scp[utt], style_source, utt)
            results["text"][utt] = best.text
            results["utt2emo"][utt] = best.emotion or "none"
            results["emotion_posterior"][utt] = " ".join(
                f"{k}:{v:.4f}" for k, v in best.posterior.items())
            results["beam_score"][utt] = f"{best.score:.4f}"
        except Exception as e:  # one utterance: record it and go on with the others
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            logging.error(f"utterance {utt}: decoding failed: {reason}")
            failed[utt] = reason
            for name in OUTPUTS:
                results[name][utt] = FAILED_VALUES[name]
        if i % max(1, len(utts) // 10) == 0 or i == len(utts):
            rate = i / max(time.time() - start, 1e-9)
            logging.info(f"decoded {i}/{len(utts)} utterances ({rate:.2f} utt/s)")
    write_part(out, len(utts), results, failed, args.max_failures)


def decode_one(args, s2t, rxfile: str, style_source, utt: str):
    """The best hypothesis of one utterance; raises on any problem with it."""
    import kaldiio

    try:
        feats = kaldiio.load_mat(rxfile)
    except Exception as e:
        raise RuntimeError(f"{args.feats_scp}: cannot read {rxfile}: {type(e).__name__}: {e}") from e
    hyps = s2t(feats, style_source(utt) if style_source else None)
    if not hyps:
        raise RuntimeError("the beam search returned no hypothesis")
    return hyps[0]


def style_inputs(args, name, utts):
    """A function utt -> style input for the model's style source (None if it has none)."""
    import kaldiio
    import numpy as np

    if name is None:
        return None
    if name == "style_speech":
        path, flag = args.style_scp, "--style_scp"
    else:
        path, flag = args.emotion_ids, "--emotion_ids"
    if path is None:
        raise ValueError(f"{args.exp_dir}: the model is conditioned on '{name}'; pass {flag}")
    table = read_kaldi_map(path)
    missing = [u for u in utts if u not in table]
    if missing:
        raise ValueError(f"{path}: no entry for {len(missing)} utterance(s), e.g. {missing[0]}")
    if name == "emotion":
        logging.warning("oracle conditioning: decoding with the REFERENCE emotion of every utterance")
        atomic_write_text(args.output_dir / "ORACLE_EMOTION_CONDITIONING",
                          f"decoded with the reference emotion ids of {path}\n")

        def emotion(utt):
            try:
                return np.array([int(table[utt])], dtype=np.int64)
            except ValueError:
                raise ValueError(f"{path}: utterance {utt}: not an integer emotion id: {table[utt]!r}")
        return emotion

    def gst_feats(utt):
        try:
            return kaldiio.load_mat(table[utt])
        except Exception as e:
            raise RuntimeError(f"{path}: utterance {utt}: cannot read {table[utt]}: {e}") from e
    return gst_feats


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    try:
        scp = read_kaldi_map(args.feats_scp)
        parts = split_parts(scp, args.nj)
        if args.merge:
            merge_parts(args.output_dir, args.nj, parts, OUTPUTS, args.max_failures,
                        job_kind="decoding", done="decoded", failed_note="failed to decode")
            return
        run_jobs(args.output_dir, args.nj, args.job, parts,
                 lambda utts, out: decode_part(args, utts, scp, out))
    except (OSError, ValueError, RuntimeError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
