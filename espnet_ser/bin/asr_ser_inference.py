"""Stage 5: decode a dumped set with joint CTC/attention beam search.

Job J of N (``--nj N --job J``) decodes one part; ``--merge`` joins them. Outputs: ``text``,
``utt2emo`` ("none": no emotion token), ``emotion_posterior`` (``ang:0.0123 ...``),
``beam_score``, ``failed``. More than ``--max_failures`` failures, or nothing decoded, exits
non-zero. Style-conditioned models need ``--style_scp`` (GST) or ``--emotion_ids`` (oracle;
marked by an ``ORACLE_EMOTION_CONDITIONING`` file)::

    python -m espnet_ser.bin.asr_ser_inference --exp_dir exp/asr_train \
        --decode_config conf/decode.yaml --feats_scp dump/fbank/test/feats.scp \
        --output_dir exp/asr_train/decode/test --nj 4 --job 1
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, List

from espnet_ser.utils.io import atomic_write_text, read_kaldi_map
from espnet_ser.utils.cli import setup_logging
from espnet_ser.utils.jobs import format_posterior, job_parser, load_mat, run_or_merge, write_outcomes

OUTPUTS = ("text", "utt2emo", "emotion_posterior", "beam_score")
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

    def outcome(utt):
        hyps = s2t(load_mat(args.feats_scp, scp[utt]), style_source(utt) if style_source else None)
        if not hyps:
            raise RuntimeError("the beam search returned no hypothesis")
        best = hyps[0]
        return dict(text=best.text, utt2emo=best.emotion or "none",
                    emotion_posterior=format_posterior(best.posterior),
                    beam_score=f"{best.score:.4f}")

    write_outcomes(out, utts, outcome, FAILED_VALUES, args.max_failures)


def style_inputs(args, name, utts):
    """A function utt -> style input for the model's style source (None if it has none)."""
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

    return lambda utt: load_mat(f"{path}: utterance {utt}", table[utt])


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    run_or_merge(args, lambda: read_kaldi_map(args.feats_scp), OUTPUTS,
                 lambda utts, scp, out: decode_part(args, utts, scp, out), job_kind="decoding",
                 done="decoded", failed_note="failed to decode")


if __name__ == "__main__":
    main()
