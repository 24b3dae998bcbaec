"""Stage 5: decode a dumped set with joint CTC/attention beam search.

Job J of N (``--nj N --job J``) decodes one part; ``--merge`` joins them. Outputs: ``text``
(hypothesis with the emotion token), ``utt2emo`` (emitted code or "none"),
``emotion_posterior`` (``ang:0.0123 ...``), ``beam_score`` and ``failed`` (utterances whose
decoding raised, written with empty text, "none" and "nan"). More than ``--max_failures``
failures, or nothing decoded, exits non-zero. A style-conditioned model needs ``--style_scp``
(GST log-mel dump) or ``--emotion_ids`` (oracle: the reference label; the output directory
gets an ``ORACLE_EMOTION_CONDITIONING`` file)::

    python -m espnet_ser.bin.asr_ser_inference --exp_dir exp/asr_train \
        --decode_config conf/decode.yaml --feats_scp dump/fbank/test/feats.scp \
        --output_dir exp/asr_train/decode/test --nj 4 --job 1
"""

import argparse
import logging
import time
from pathlib import Path
from typing import Dict, List

from espnet_ser.utils.io import atomic_write_text, read_kaldi_map
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import job_parser, run_or_merge, write_part

OUTPUTS = ("text", "utt2emo", "emotion_posterior", "beam_score")
# values written for an utterance that could not be decoded
FAILED_VALUES = {"text": "", "utt2emo": "none", "emotion_posterior": "", "beam_score": "nan"}


def get_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__, "decode")
    p.add_argument("--decode_config", type=Path, default=None, help="decoding YAML")
    p.add_argument("--feats_scp", type=Path, required=True, help="feats.scp of the set to decode")
    p.add_argument("--style_scp", type=Path, default=None,
                   help="GST features (feats.scp) for models with style_encoder: gst")
    p.add_argument("--emotion_ids", type=Path, default=None,
                   help="reference emotion ids for models with style_encoder: oracle")
    return p


def decode_part(args, utts: List[str], scp: Dict[str, str], out: Path) -> None:
    import torch

    from espnet_ser.asr.inference import Speech2TextEmotion

    torch.set_num_threads(args.num_threads)
    s2t = Speech2TextEmotion.from_exp_dir(args.exp_dir, args.model_file, args.decode_config,
                                          device=args.device)
    style_source = style_inputs(args, s2t.style_input_name, utts)
    results: Dict[str, Dict[str, str]] = {name: {} for name in OUTPUTS}
    failed: Dict[str, str] = {}
    start = time.time()
    for i, utt in enumerate(utts, 1):
        try:
            best = decode_one(args, s2t, scp[utt], style_source, utt)
            values = dict(text=best.text, utt2emo=best.emotion or "none",
                          emotion_posterior=" ".join(f"{k}:{v:.4f}"
                                                     for k, v in best.posterior.items()),
                          beam_score=f"{best.score:.4f}")
        except Exception as e:  # one utterance: record it and go on with the others
            failed[utt] = " ".join(f"{type(e).__name__}: {e}".split())
            logging.error(f"utterance {utt}: decoding failed: {failed[utt]}")
            values = FAILED_VALUES
        for name in OUTPUTS:
            results[name][utt] = values[name]
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
        raise RuntimeError(f"{args.feats_scp}: cannot read {rxfile}: "
                           f"{type(e).__name__}: {e}") from e
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
    flag = "--style_scp" if name == "style_speech" else "--emotion_ids"
    path = getattr(args, flag[2:])
    if path is None:
        raise ValueError(f"{args.exp_dir}: the model is conditioned on '{name}'; pass {flag}")
    table = read_kaldi_map(path)
    missing = [u for u in utts if u not in table]
    if missing:
        raise ValueError(f"{path}: no entry for {len(missing)} utterance(s), e.g. {missing[0]}")
    if name == "emotion":
        logging.warning("oracle conditioning: decoding with the REFERENCE emotion of every "
                        "utterance")
        atomic_write_text(args.output_dir / "ORACLE_EMOTION_CONDITIONING",
                          f"decoded with the reference emotion ids of {path}\n")

        def emotion(utt):
            try:
                return np.array([int(table[utt])], dtype=np.int64)
            except ValueError:
                raise ValueError(f"{path}: utterance {utt}: not an integer emotion id: "
                                 f"{table[utt]!r}")
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
    run_or_merge(args, lambda: read_kaldi_map(args.feats_scp), OUTPUTS,
                 lambda utts, scp, out: decode_part(args, utts, scp, out), job_kind="decoding",
                 done="decoded", failed_note="failed to decode")


if __name__ == "__main__":
    main()
