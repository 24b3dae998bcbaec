#!/usr/bin/env python3
"""Benchmark of the frozen-encoder speed path (dumped SSL hidden states).

Builds a frozen SSL encoder (``freeze: all``) from a config, synthesises N utterances
(seeded sine mixtures plus noise, 2-6 s, 16 kHz wav files in a Kaldi data directory)
and measures, on this machine, in one run:

(a) one training epoch of the real SERTask model (``SERTask.build_model``: SSL encoder
    -> mean pooling -> linear classifier; Adam on the trainable parameters, i.e. the
    layer weights and the classifier) reading the same N utterances in the same
    batches with ESPnet's ``kaldi_ark`` loader and ``CommonCollateFn``:
    from a waveform dump (``extract_feats --extractor wave``; the encoder runs) and from
    a hidden-state dump (``extract_feats --extractor ssl_states``; it does not). Prints
    both times, the speedup and how far apart the two trained models end up.
(b) peak RSS (``ru_maxrss``) of hidden-state extraction through the extract_feats CLI
    for N and 4N utterances, each in a fresh subprocess, next to the RSS after imports
    and the model build in that process.

Usage::

    python -m espnet_ser.bin.benchmark_ssl_dump                       # default model
    python -m espnet_ser.bin.benchmark_ssl_dump --model_config wav2vec2-base --num_utts 8
    python -m espnet_ser.bin.benchmark_ssl_dump --compress             # Kaldi compressed dump
    python -m espnet_ser.bin.benchmark_ssl_dump --model_config '{"model_type": "hubert", ...}'

``--model_config`` takes a JSON object (``SSLEncoder(model_config=...)``) or the name
of one of :func:`espnet_ser.ssl.encoder.published_size_configs` (random weights; no
download). The default, a 4-layer hidden-256 wav2vec2-like model with layer-norm
feature extractor (attention mask, so padding does not change the outputs), runs in
about one minute on 2 CPU cores with N=32.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile
import torch
import yaml

DEFAULT_MODEL = dict(
    model_type="wav2vec2",
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    conv_dim=[256] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    feat_extract_norm="layer",
    feat_extract_activation="gelu",
    conv_bias=True,
    do_stable_layer_norm=True,
)
EMOTIONS = ["ang", "hap", "neu", "sad"]
FS = 16000


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Epoch time from waveforms vs dumped SSL hidden states; peak "
        "memory of extraction",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model_config", default=None,
                        help="JSON model config or a published_size_configs() name; "
                        "default: a 4-layer hidden-256 wav2vec2-like model")
    parser.add_argument("--layer", default="weighted",
                        help="encoder layer: last, weighted or an int")
    parser.add_argument("--num_utts", type=int, default=32, help="N")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--min_seconds", type=float, default=2.0)
    parser.add_argument("--max_seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_threads", type=int, default=2, help="torch threads")
    parser.add_argument("--skip_memory", action="store_true", help="skip (b)")
    parser.add_argument("--compress", action="store_true",
                        help="dump Kaldi compressed hidden states (extract_feats --compress true)")
    parser.add_argument("--work_dir", default=None,
                        help="where to write data and dumps (default: a new temp dir, "
                        "removed at the end)")
    return parser


def model_config_from_arg(value) -> Dict:
    if value is None:
        return dict(DEFAULT_MODEL)
    from espnet_ser.ssl.encoder import published_size_configs

    named = published_size_configs()
    if value in named:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in named[value].items()}
    try:
        conf = json.loads(value)
    except json.JSONDecodeError as e:
        raise SystemExit(
            f"--model_config: neither JSON nor one of {sorted(named)}: {value!r} ({e})"
        )
    if not isinstance(conf, dict):
        raise SystemExit("--model_config JSON must be an object")
    return conf


def synthesise(root: Path, n: int, seed: int, min_s: float, max_s: float) -> List[float]:
    """Write ``n`` wavs and a data directory under ``root``; return their durations."""
    from espnet_ser.data.datadir import write_data_dir

    rng = np.random.default_rng(seed)
    fields = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo")}
    durations = []
    for i in range(n):
        seconds = float(rng.uniform(min_s, max_s))
        t = np.arange(int(seconds * FS)) / FS
        sig = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 2000) * t
                                                 + rng.uniform(0, 2 * np.pi))
                  for _ in range(3))
        sig = sig + 0.02 * rng.standard_normal(len(t))
        utt = f"spk{i % 4}_utt{i:04d}"
        path = root / "wav" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), sig.astype(np.float32), FS, subtype="PCM_16")
        fields["wav.scp"][utt] = str(path)
        fields["text"][utt] = "a b"
        fields["utt2spk"][utt] = f"spk{i % 4}"
        fields["utt2emo"][utt] = EMOTIONS[i % len(EMOTIONS)]
        durations.append(seconds)
    write_data_dir(root / "data", fields)
    return durations


def subset_data(src: Path, dst: Path, utts: List[str]) -> None:
    from espnet_ser.data.datadir import read_kaldi_map, write_data_dir

    keep = set(utts)
    fields = {}
    for name in ("wav.scp", "text", "utt2spk", "utt2emo"):
        fields[name] = {u: v for u, v in read_kaldi_map(src / name).items() if u in keep}
    write_data_dir(dst, fields)


# Peak RSS of the process: VmHWM (Linux; per address space, so a fresh process starts
# from zero; ru_maxrss would start at the parent's RSS, which Linux keeps across exec).
EXTRACT_SNIPPET = textwrap.dedent("""
    import resource, sys, time, torch

    def peak_kib():
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    torch.set_num_threads({threads})
    from espnet_ser.features.ssl_states import make_extractor
    from espnet_ser.bin.extract_feats import main
    ext = make_extractor("ssl_states", train_config={config!r})
    del ext
    base = peak_kib()
    start = time.time()
    main({cmd!r})
    took = time.time() - start
    print("RESULT", base, peak_kib(), took)
""")


def extract_in_subprocess(config: Path, data: Path, out: Path, threads: int, compress: bool):
    """Run hidden-state extraction in a fresh process; return (base KiB, peak KiB, s).

    base: peak RSS after imports and building the model once; peak: at the end; s: the
    time of the extract_feats call (model build, extraction, merge).
    """
    cmd = ["--extractor", "ssl_states", "--train_config", str(config), "--data_dir",
           str(data), "--out_dir", str(out), "--nj", "1", "--num_threads", str(threads),
           "--log_level", "WARNING", "--compress", str(compress).lower()]
    code = EXTRACT_SNIPPET.format(threads=threads, config=str(config), cmd=cmd)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if proc.returncode != 0:
        raise SystemExit(f"extraction failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    base, peak, took = line.split()[1:]
    return int(base), int(peak), float(took)


def build_model(config: Path):
    from espnet_ser.tasks.ser import SERTask

    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    parser = SERTask.get_parser()
    parser.set_defaults(**conf)
    args = parser.parse_args([])
    torch.manual_seed(0)
    return SERTask.build_model(args)


def train_epoch(model, feats_scp: Path, emotion_file: Path, batches: List[List[str]]):
    """One epoch over ``batches`` with ESPnet's data loading; returns (seconds, loss)."""
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset(
        [(str(feats_scp), "speech", "kaldi_ark"), (str(emotion_file), "emotion", "text_int")],
        float_dtype="float32", int_dtype="long",
    )
    collate = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    model.train()
    total = 0.0
    start = time.perf_counter()
    for keys in batches:
        _, batch = collate([(k, dataset[k][1]) for k in keys])
        loss, _, _ = model(**batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(keys)
    seconds = time.perf_counter() - start
    return seconds, total / sum(len(b) for b in batches)


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    torch.set_num_threads(max(1, args.num_threads))
    from espnet_ser.bin.extract_feats import main as extract_main
    from espnet_ser.utils.cli import setup_logging

    setup_logging("WARNING")
    model_config = model_config_from_arg(args.model_config)
    layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    n = args.num_utts
    tmp = args.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="benchmark_ssl_dump_") if tmp else args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.time()
        n_all = n if args.skip_memory else 4 * n
        durations = synthesise(work / "all", n_all, args.seed, args.min_seconds,
                               args.max_seconds)
        from espnet_ser.data.datadir import read_kaldi_map

        all_utts = sorted(read_kaldi_map(work / "all" / "data" / "wav.scp"))
        small = all_utts[:n]
        subset_data(work / "all" / "data", work / "small", small)
        config = work / "train_frozen.yaml"
        config.write_text(yaml.safe_dump(dict(
            encoder="ssl", input_size=1, normalize="none", pooling="mean",
            classifier="linear", emotions=EMOTIONS, seed=0,
            encoder_conf=dict(model_config=model_config, layer=layer, freeze="all"),
        )), encoding="utf-8")
        print(f"model: {json.dumps(model_config)}")
        print(f"layer: {layer}; torch threads: {args.num_threads}; cpus: {os.cpu_count()}")
        secs_small = sum(durations[all_utts.index(u)] for u in small)
        print(f"data: N={n} utterances ({secs_small:.1f} s of audio)"
              + ("" if args.skip_memory else f", 4N={4 * n} ({sum(durations):.1f} s)")
              + f", {args.min_seconds:g}-{args.max_seconds:g} s each")

        # dumps of the N utterances (the states dump timed in a fresh process = (b) for N)
        extract_main(["--extractor", "wave", "--data_dir", str(work / "small"), "--out_dir",
                      str(work / "dump_raw"), "--log_level", "WARNING"])
        base_n, peak_n, took_n = extract_in_subprocess(
            config, work / "small", work / "dump_states", args.num_threads, args.compress)
        states_conf = yaml.safe_load((work / "dump_states" / "fbank.yaml").read_text())
        size = sum(p.stat().st_size for p in (work / "dump_states" / "split1").glob("*.ark"))
        print(f"hidden-state dump{' (Kaldi compressed)' if args.compress else ''}: "
              f"layers {states_conf['layers']}, dim {states_conf['dim']}, "
              f"{size / 2**20:.1f} MiB for N utterances; extraction took {took_n:.1f} s")

        # (a) one epoch from waveforms vs from dumped states, same batches
        emotion_file = work / "emotion"
        utt2emo = read_kaldi_map(work / "small" / "utt2emo")
        emotion_file.write_text("".join(f"{u} {EMOTIONS.index(utt2emo[u])}\n" for u in small))
        batches = [small[i : i + args.batch_size] for i in range(0, n, args.batch_size)]
        model_w = build_model(config)
        model_d = build_model(config)
        model_d.load_state_dict(model_w.state_dict())
        n_train = sum(p.numel() for p in model_w.parameters() if p.requires_grad)
        n_params = sum(p.numel() for p in model_w.parameters())
        print(f"SERTask model: {n_params / 1e6:.2f} M parameters, {n_train} trainable "
              f"(the SSL model is frozen); {len(batches)} batches of <= {args.batch_size}")
        if not model_w.encoder.use_attention_mask:
            print("note: no attention mask (group-norm feature extractor): a padded waveform "
                  "batch gives slightly different states than the single utterances dumped, "
                  "so the two epochs differ numerically")
        t_wave, loss_w = train_epoch(model_w, work / "dump_raw" / "feats.scp", emotion_file,
                                     batches)
        t_dump, loss_d = train_epoch(model_d, work / "dump_states" / "feats.scp",
                                     emotion_file, batches)
        diff = max(float((a - b).abs().max()) for a, b in zip(
            model_w.state_dict().values(), model_d.state_dict().values()))
        print(f"(a) epoch running the encoder on waveforms: {t_wave:8.3f} s "
              f"(mean loss {loss_w:.4f})")
        print(f"(a) epoch reading dumped hidden states:     {t_dump:8.3f} s "
              f"(mean loss {loss_d:.4f})")
        print(f"(a) speedup: {t_wave / t_dump:.1f}x; max |parameter difference| after the "
              f"epoch: {diff:.2e}")

        if not args.skip_memory:
            print("(b) hidden-state extraction through the extract_feats CLI, a fresh process "
                  "each (peak RSS after imports and model build -> peak RSS at the end):")
            print(f"(b)   N={n:4d}: {base_n / 1024:7.1f} MiB -> {peak_n / 1024:7.1f} MiB "
                  f"({took_n:.1f} s)")
            base_4n, peak_4n, took_4n = extract_in_subprocess(
                config, work / "all" / "data", work / "dump_states_4n", args.num_threads,
                args.compress)
            print(f"(b)  4N={4 * n:4d}: {base_4n / 1024:7.1f} MiB -> {peak_4n / 1024:7.1f} MiB "
                  f"({took_4n:.1f} s)")
            print(f"(b) peak ratio 4N/N: {peak_4n / peak_n:.3f}")
        print(f"total benchmark time: {time.time() - t0:.1f} s")
    finally:
        if tmp:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
