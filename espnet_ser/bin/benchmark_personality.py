"""What the personality fusion costs a training step: the same SER model with and without it.

Builds both configs with a random encoder of the published HuBERT-base size (the configs'
``model_name_or_path`` replaced by it: no download), times training steps (forward with CTC,
backward, AdamW) on one synthetic batch of waveforms, alternating the two models, and prints
the medians and the overhead of the fusion as JSON::

    python -m espnet_ser.bin.benchmark_personality \\
        --base_config egs/pa_iemocap/conf/tuning/train_ser_hubert_row0.yaml \\
        --fusion_config egs/pa_iemocap/conf/tuning/train_ser_hubert_row12.yaml
"""

import json
import tempfile
from pathlib import Path
from typing import List, Optional

import torch
import yaml

from espnet_ser.bin.benchmark_gst import median_times, train_step
from espnet_ser.utils.cli import doc_parser

CHARS = ["<blank>", "<unk>", "<space>"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
    "'", "<sos/eos>"]


def build(config: Path, tmp: Path, size: str):
    from espnet_ser.ssl.encoder import published_size_configs
    from espnet_ser.tasks.ser import SERTask

    conf = yaml.safe_load(config.read_text())
    enc = dict(conf["encoder_conf"])
    enc.pop("model_name_or_path", None)
    conf["encoder_conf"] = dict(enc, model_config=published_size_configs()[size])
    path = tmp / config.name
    path.write_text(yaml.safe_dump(conf))
    (tmp / "tokens.txt").write_text("".join(t + "\n" for t in CHARS))
    args = SERTask.get_parser().parse_args([
        "--config", str(path), "--emotions", "ang", "hap", "neu", "sad", "--input_size", "1",
        "--token_list", str(tmp / "tokens.txt")])
    model = SERTask.build_model(args)
    optim = SERTask.build_optimizers(args, model)[0]
    return model, optim


def main(cmd: Optional[List[str]] = None) -> None:
    p = doc_parser(__doc__)
    p.add_argument("--base_config", type=Path, required=True)
    p.add_argument("--fusion_config", type=Path, required=True)
    p.add_argument("--size", default="hubert-base", help="published encoder size to build")
    for name, kind, default in (("batch", int, 8), ("utt_seconds", float, 4.5),
                                ("text_chars", int, 60), ("rounds", int, 5),
                                ("threads", int, 2), ("seed", int, 0)):
        p.add_argument(f"--{name}", type=kind, default=default)
    args = p.parse_args(cmd)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    samples = int(args.utt_seconds * 16000)
    batch = dict(
        speech=torch.randn(args.batch, samples, generator=g),
        speech_lengths=torch.full((args.batch,), samples, dtype=torch.long),
        emotion=torch.randint(0, 4, (args.batch, 1), generator=g),
        text=torch.randint(3, len(CHARS) - 1, (args.batch, args.text_chars), generator=g),
        text_lengths=torch.full((args.batch,), args.text_chars, dtype=torch.long),
        personality=1 + 6 * torch.rand(args.batch, 10, generator=g))
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in (("base", args.base_config), ("fusion", args.fusion_config)):
            torch.manual_seed(args.seed)
            model, optim = build(config, Path(tmp), args.size)
            models[name] = dict(model=model, optim=optim,
                                params=sum(q.numel() for q in model.parameters()))
    med = median_times(args.rounds, {
        n: lambda r, m=m: train_step(m["model"], m["optim"], batch) for n, m in models.items()})
    fusion = models["fusion"]["model"].personality_fusion
    print(json.dumps(dict(
        size=args.size, batch=args.batch, utt_seconds=args.utt_seconds, rounds=args.rounds,
        threads=args.threads, device="cpu",
        params=dict(base=models["base"]["params"], fusion=models["fusion"]["params"],
                    fusion_module=sum(q.numel() for q in fusion.parameters()) if fusion else 0),
        step_seconds=dict(base=round(med["base"], 4), fusion=round(med["fusion"], 4)),
        overhead_percent=round(100 * (med["fusion"] / med["base"] - 1), 2)), indent=2))


if __name__ == "__main__":
    main()
