"""What GST conditioning costs: training-step and decoding time, with and without GST.

Builds the baseline model (``--base_config``) and the GST model (``--gst_config``) with
the same vocabulary, times training steps (forward, backward, Adam step) on the same
synthetic batch and beam-search decoding of the same utterances, alternating between the
two models round by round so that machine load affects both alike, and prints the
medians and the ratios GST / baseline as JSON::

    python -m espnet_ser.bin.benchmark_gst \\
        --base_config egs/mini_emo/conf/tuning/train_asr_ser_conformer_small.yaml \\
        --gst_config egs/mini_emo/conf/tuning/train_asr_ser_conformer_small_gst.yaml

Inputs are random features of ``--utt_seconds`` seconds: 16 ms frames for the AED
(conf/fbank.yaml) and 12.5 ms frames for the GST reference encoder (conf/fbank_gst.yaml);
decoding is the joint CTC/attention beam search of :class:`Speech2TextEmotion` with
``--beam_size`` and hypotheses of a fixed length (``--hyp_tokens``: the end of sentence
is allowed only at the last step), so both models do the same search.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import yaml

from espnet_ser.utils.offline import quiet_nltk_downloads


def build(config: Path, token_list: Path, n_mels: int):
    from espnet_ser.tasks.asr_ser import ASRSERTask

    parser = ASRSERTask.get_parser()
    args = parser.parse_args(["--config", str(config), "--token_list", str(token_list),
                              "--token_type", "word", "--input_size", str(n_mels),
                              "--normalize", "none"])
    return ASRSERTask.build_model(args), args


def synthetic_batch(model, batch: int, seconds: float, n_tokens: int, vocab: int, seed: int) -> Dict:
    g = torch.Generator().manual_seed(seed)
    frames, gst_frames = int(seconds * 1000 / 16) + 1, int(seconds * 1000 / 12.5) + 1
    out = dict(
        speech=torch.randn(batch, frames, 80, generator=g),
        speech_lengths=torch.full((batch,), frames, dtype=torch.long),
        text=torch.randint(6, vocab - 1, (batch, n_tokens), generator=g),
        text_lengths=torch.full((batch,), n_tokens, dtype=torch.long),
    )
    if getattr(model, "style_input_name", None) == "style_speech":
        out["style_speech"] = torch.randn(batch, gst_frames, 80, generator=g)
        out["style_speech_lengths"] = torch.full((batch,), gst_frames, dtype=torch.long)
    return out


def train_step(model, optim, batch) -> float:
    start = time.perf_counter()
    optim.zero_grad()
    loss, _, _ = model(**batch)
    loss.backward()
    optim.step()
    return time.perf_counter() - start


def make_decoder(model, args, exp: Path, beam: int, maxlenratio: float, minlenratio: float):
    from espnet_ser.asr.inference import Speech2TextEmotion

    exp.mkdir(parents=True, exist_ok=True)
    with (exp / "config.yaml").open("w") as f:
        yaml.safe_dump(vars(args), f)
    torch.save(model.state_dict(), exp / "model.pth")
    # end of sentence only at the last step: every search runs to the same length
    return Speech2TextEmotion(exp / "config.yaml", exp / "model.pth", beam_size=beam,
                              maxlenratio=maxlenratio, minlenratio=minlenratio, ctc_weight=0.3)


def decode_time(s2t, feats, style) -> float:
    start = time.perf_counter()
    s2t(feats, style if s2t.style_input_name else None)
    return time.perf_counter() - start


def main(cmd: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_config", type=Path, required=True)
    p.add_argument("--gst_config", type=Path, required=True)
    p.add_argument("--vocab", type=int, default=150, help="output units incl. specials")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--utt_seconds", type=float, default=2.2)
    p.add_argument("--text_tokens", type=int, default=20)
    p.add_argument("--train_rounds", type=int, default=12)
    p.add_argument("--decode_rounds", type=int, default=12)
    p.add_argument("--beam_size", type=int, default=10)
    p.add_argument("--hyp_tokens", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
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
        # training steps, alternating; the first round of each warms up and is dropped
        times = {n: [] for n in models}
        for r in range(args.train_rounds + 1):
            for n, m in models.items():
                m["model"].train()
                t = train_step(m["model"], m["optim"], m["batch"])
                if r:
                    times[n].append(t)
        # decoding one utterance at a time, alternating
        g = torch.Generator().manual_seed(args.seed + 1)
        frames = int(args.utt_seconds * 1000 / 16) + 1
        gst_frames = int(args.utt_seconds * 1000 / 12.5) + 1
        utts = [(torch.randn(frames, 80, generator=g).numpy(),
                 torch.randn(gst_frames, 80, generator=g).numpy()) for _ in range(args.decode_rounds + 1)]
        enc_len = (((frames - 1) // 2 - 1) // 2)
        maxlenratio = (args.hyp_tokens + 0.5) / enc_len
        minlenratio = (args.hyp_tokens - 0.5) / enc_len
        decoders = {n: make_decoder(m["model"].eval(), m["margs"], tmp / n, args.beam_size,
                                    maxlenratio, minlenratio)
                    for n, m in models.items()}
        dtimes = {n: [] for n in models}
        with torch.no_grad():
            for r, (feats, style) in enumerate(utts):
                for n, s2t in decoders.items():
                    t = decode_time(s2t, feats, style)
                    if r:
                        dtimes[n].append(t)

    med = {n: statistics.median(v) for n, v in times.items()}
    dmed = {n: statistics.median(v) for n, v in dtimes.items()}
    report = dict(
        base_config=str(args.base_config), gst_config=str(args.gst_config),
        params={n: m["params"] for n, m in models.items()},
        threads=args.threads, batch=args.batch, utt_seconds=args.utt_seconds,
        train_step_seconds=med, train_ratio=med["gst"] / med["base"],
        decode_seconds_per_utt=dmed, decode_ratio=dmed["gst"] / dmed["base"],
        beam_size=args.beam_size, rounds=dict(train=args.train_rounds, decode=args.decode_rounds),
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
