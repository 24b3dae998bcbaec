"""What GST conditioning costs: training-step and decoding time, with and without GST.

Times training steps (forward, backward, Adam) on a synthetic batch and beam search over
random features (hypotheses of ``--hyp_tokens`` tokens) for both configs, alternating, and
prints the medians and the ratios GST / baseline as JSON::

    python -m espnet_ser.bin.benchmark_gst \
        --base_config egs/mini_emo/conf/tuning/train_asr_ser_conformer_small.yaml \
        --gst_config egs/mini_emo/conf/tuning/train_asr_ser_conformer_small_gst.yaml
"""

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import yaml

from espnet_ser.utils.cli import doc_parser
from espnet_ser.utils.offline import quiet_nltk_downloads


def build(config: Path, token_list: Path, n_mels: int):
    from espnet_ser.tasks.asr_ser import ASRSERTask
    args = ASRSERTask.get_parser().parse_args([
        "--config", str(config), "--token_list", str(token_list), "--token_type", "word",
        "--input_size", str(n_mels), "--normalize", "none"])
    return ASRSERTask.build_model(args), args


def frames_of(seconds: float):
    """Frames of the AED (16 ms) and GST (12.5 ms) features of ``seconds``."""
    return int(seconds * 1000 / 16) + 1, int(seconds * 1000 / 12.5) + 1


def synthetic_batch(model, batch: int, seconds: float, n_tokens: int, vocab: int, seed: int
                    ) -> Dict:
    g = torch.Generator().manual_seed(seed)
    frames, gst_frames = frames_of(seconds)
    out = dict(
        speech=torch.randn(batch, frames, 80, generator=g),
        speech_lengths=torch.full((batch,), frames, dtype=torch.long),
        text=torch.randint(6, vocab - 1, (batch, n_tokens), generator=g),
        text_lengths=torch.full((batch,), n_tokens, dtype=torch.long))
    if getattr(model, "style_input_name", None) == "style_speech":
        out["style_speech"] = torch.randn(batch, gst_frames, 80, generator=g)
        out["style_speech_lengths"] = torch.full((batch,), gst_frames, dtype=torch.long)
    return out


def train_step(model, optim, batch) -> None:
    model.train()
    optim.zero_grad()
    model(**batch)[0].backward()
    optim.step()


def median_times(rounds: int, steps: Dict[str, Callable[[int], object]]) -> Dict[str, float]:
    """Median seconds of each ``step(round)``, alternating; the warm-up round 0 is dropped."""
    times: Dict[str, List[float]] = {n: [] for n in steps}
    for r in range(rounds + 1):
        for n, step in steps.items():
            start = time.perf_counter()
            step(r)
            if r:
                times[n].append(time.perf_counter() - start)
    return {n: statistics.median(v) for n, v in times.items()}


def make_decoder(model, args, exp: Path, beam: int, maxlenratio: float, minlenratio: float):
    from espnet_ser.asr.inference import Speech2TextEmotion
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "model.pth")
    # end of sentence only at the last step: every search runs to the same length
    return Speech2TextEmotion(exp / "config.yaml", exp / "model.pth", beam_size=beam,
                              maxlenratio=maxlenratio, minlenratio=minlenratio, ctc_weight=0.3)


def main(cmd: Optional[List[str]] = None) -> None:
    p = doc_parser(__doc__)
    p.add_argument("--base_config", type=Path, required=True)
    p.add_argument("--gst_config", type=Path, required=True)
    p.add_argument("--vocab", type=int, default=150, help="output units incl. specials")
    for name, kind, default in (("batch", int, 16), ("utt_seconds", float, 2.2),
                                ("text_tokens", int, 20), ("train_rounds", int, 12),
                                ("decode_rounds", int, 12), ("beam_size", int, 10),
                                ("hyp_tokens", int, 20), ("threads", int, 1), ("seed", int, 0)):
        p.add_argument(f"--{name}", type=kind, default=default)
    args = p.parse_args(cmd)
    quiet_nltk_downloads()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tokens = ["<blank>", "<unk>", "<ang>", "<hap>", "<neu>", "<sad>"]
        tokens += [f"w{i}" for i in range(args.vocab - len(tokens) - 1)] + ["<sos/eos>"]
        (tmp / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
        models = {}
        for name, config in (("base", args.base_config), ("gst", args.gst_config)):
            torch.manual_seed(args.seed)
            model, margs = build(config, tmp / "tokens.txt", 80)
            batch = synthetic_batch(model, args.batch, args.utt_seconds, args.text_tokens,
                                    len(tokens), args.seed)
            optim = torch.optim.Adam(model.parameters(), lr=1e-4)
            models[name] = dict(model=model, margs=margs, batch=batch, optim=optim,
                                params=sum(p.numel() for p in model.parameters()))
        med = median_times(args.train_rounds, {
            n: lambda r, m=m: train_step(m["model"], m["optim"], m["batch"])
            for n, m in models.items()})
        # decoding one utterance at a time
        g = torch.Generator().manual_seed(args.seed + 1)
        frames, gst_frames = frames_of(args.utt_seconds)
        utts = [(torch.randn(frames, 80, generator=g).numpy(),
                 torch.randn(gst_frames, 80, generator=g).numpy())
                for _ in range(args.decode_rounds + 1)]
        enc_len = (((frames - 1) // 2 - 1) // 2)
        decoders = {n: make_decoder(m["model"].eval(), m["margs"], tmp / n, args.beam_size,
                                    (args.hyp_tokens + 0.5) / enc_len,
                                    (args.hyp_tokens - 0.5) / enc_len) for n, m in models.items()}
        with torch.no_grad():
            dmed = median_times(args.decode_rounds, {
                n: lambda r, s2t=s2t: s2t(utts[r][0], utts[r][1] if s2t.style_input_name else None)
                for n, s2t in decoders.items()})
    report = dict(
        base_config=str(args.base_config), gst_config=str(args.gst_config),
        params={n: m["params"] for n, m in models.items()},
        threads=args.threads, batch=args.batch, utt_seconds=args.utt_seconds,
        train_step_seconds=med, train_ratio=med["gst"] / med["base"],
        decode_seconds_per_utt=dmed, decode_ratio=dmed["gst"] / dmed["base"],
        beam_size=args.beam_size, rounds=dict(train=args.train_rounds, decode=args.decode_rounds))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
