#!/usr/bin/env python3
"""Benchmark of dumped SSL hidden states on N synthetic utterances: (a) a training epoch from
waveforms vs from the dump; (b) peak RSS of extracting N and 4N utterances (fresh processes)."""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile
import torch
import yaml

from espnet_ser.utils.cli import doc_parser, setup_logging

DEFAULT_MODEL = dict(
    model_type="wav2vec2", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
    intermediate_size=1024, conv_dim=[256] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2], num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16, feat_extract_norm="layer", feat_extract_activation="gelu",
    conv_bias=True, do_stable_layer_norm=True)
EMOTIONS = ["ang", "hap", "neu", "sad"]
FS = 16000


def get_parser() -> argparse.ArgumentParser:
    parser = doc_parser("Epoch time from waveforms vs dumped SSL hidden states; peak memory of "
                        "extraction", show_defaults=True)
    add = parser.add_argument
    add("--model_config", default=None, help="JSON model config or a published_size_configs() "
        "name; default: a 4-layer hidden-256 wav2vec2-like model")
    add("--layer", default="weighted", help="encoder layer: last, weighted or an int")
    add("--num_utts", type=int, default=32, help="N")
    for name, kind, default in (("batch_size", int, 8), ("min_seconds", float, 2.0),
                                ("max_seconds", float, 6.0), ("seed", int, 0)):
        add(f"--{name}", type=kind, default=default)
    add("--num_threads", type=int, default=2, help="torch threads")
    add("--skip_memory", action="store_true", help="skip (b)")
    add("--compress", action="store_true", help="extract_feats --compress true")
    add("--work_dir", default=None, help="where to write data and dumps (default: a temp dir)")
    return parser


def model_config_from_arg(value) -> Dict:
    if value is None:
        return dict(DEFAULT_MODEL)
    from espnet_ser.ssl.encoder import published_size_configs

    named = published_size_configs()
    if value in named:
        return json.loads(json.dumps(named[value]))  # tuples -> lists
    try:
        conf = json.loads(value)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--model_config: neither JSON nor one of {sorted(named)}: {value!r} ({e})")
    if not isinstance(conf, dict):
        raise SystemExit("--model_config JSON must be an object")
    return conf


def synthesise(wav_dir: Path, n: int, seed: int, min_s: float, max_s: float
               ) -> Tuple[Dict[str, Dict[str, str]], Dict[str, float]]:
    """Write ``n`` seeded wavs; return their data directory fields and durations."""
    rng = np.random.default_rng(seed)
    fields = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo")}
    durations = {}
    wav_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        seconds = float(rng.uniform(min_s, max_s))
        t = np.arange(int(seconds * FS)) / FS
        sig = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 2000) * t
                                                 + rng.uniform(0, 2 * np.pi)) for _ in range(3))
        sig = sig + 0.02 * rng.standard_normal(len(t))
        utt = f"spk{i % 4}_utt{i:04d}"
        path = wav_dir / f"{utt}.wav"
        soundfile.write(str(path), sig.astype(np.float32), FS, subtype="PCM_16")
        for name, value in zip(fields, (path, "a b", f"spk{i % 4}", EMOTIONS[i % len(EMOTIONS)])):
            fields[name][utt] = str(value)
        durations[utt] = seconds
    return fields, durations


# Peak RSS: VmHWM (Linux; ru_maxrss would start at the parent's RSS, kept across exec).
EXTRACT_SNIPPET = textwrap.dedent("""
    import resource, sys, time, torch

    def peak_kib():
        try:
            with open("/proc/self/status") as f:
                return int(next(x for x in f if x.startswith("VmHWM:")).split()[1])
        except (OSError, StopIteration):
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
    """Peak RSS KiB of a fresh process after imports and a model build, at the end, and the
    seconds of its extract_feats call."""
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

    args = SERTask.get_parser().parse_args(["--config", str(config)])
    torch.manual_seed(0)
    return SERTask.build_model(args)


def train_epoch(model, feats_scp: Path, emotion_file: Path, batches: List[List[str]]):
    """One epoch over ``batches`` with ESPnet's data loading; returns (seconds, loss)."""
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset(
        [(str(feats_scp), "speech", "kaldi_ark"), (str(emotion_file), "emotion", "text_int")],
        float_dtype="float32", int_dtype="long")
    collate = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    total, start = 0.0, time.perf_counter()
    for keys in batches:
        _, batch = collate([(k, dataset[k][1]) for k in keys])
        loss, _, _ = model(**batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(keys)
    return time.perf_counter() - start, total / sum(len(b) for b in batches)


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    torch.set_num_threads(max(1, args.num_threads))
    from espnet_ser.bin.extract_feats import main as extract_main
    from espnet_ser.data.datadir import write_data_dir
    from espnet_ser.features.dump import dump_config

    setup_logging("WARNING")
    model_config = model_config_from_arg(args.model_config)
    layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    n, t0 = args.num_utts, time.time()
    with (tempfile.TemporaryDirectory(prefix="benchmark_ssl_dump_") if args.work_dir is None
          else contextlib.nullcontext(args.work_dir)) as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        fields, durations = synthesise(work / "wav", n if args.skip_memory else 4 * n,
                                       args.seed, args.min_seconds, args.max_seconds)
        small = sorted(durations)[:n]
        write_data_dir(work / "all", fields)
        write_data_dir(work / "small", {k: {u: v[u] for u in small} for k, v in fields.items()})
        config = work / "train_frozen.yaml"
        config.write_text(yaml.safe_dump(dict(
            encoder="ssl", input_size=1, normalize="none", pooling="mean", classifier="linear",
            emotions=EMOTIONS, seed=0, encoder_conf=dict(
                model_config=model_config, layer=layer, freeze="all"))), encoding="utf-8")
        print(f"model: {json.dumps(model_config)}")
        print(f"layer: {layer}; torch threads: {args.num_threads}; cpus: {os.cpu_count()}")
        print(f"data: N={n} utterances ({sum(durations[u] for u in small):.1f} s of audio)"
              + ("" if args.skip_memory else f", 4N={4 * n} ({sum(durations.values()):.1f} s)")
              + f", {args.min_seconds:g}-{args.max_seconds:g} s each")

        # dumps of the N utterances (the states dump timed in a fresh process = (b) for N)
        extract_main(["--extractor", "wave", "--data_dir", str(work / "small"), "--out_dir",
                      str(work / "dump_raw"), "--log_level", "WARNING"])
        base_n, peak_n, took_n = extract_in_subprocess(
            config, work / "small", work / "dump_states", args.num_threads, args.compress)
        states_conf = dump_config(work / "dump_states")
        size = sum(p.stat().st_size for p in (work / "dump_states" / "split1").glob("*.ark"))
        print(f"hidden-state dump{' (Kaldi compressed)' if args.compress else ''}: "
              f"layers {states_conf['layers']}, dim {states_conf['dim']}, "
              f"{size / 2**20:.1f} MiB for N utterances; extraction took {took_n:.1f} s")

        # (a) one epoch from waveforms vs from dumped states, same batches
        emotion_file = work / "emotion"
        emotion_file.write_text("".join(f"{u} {EMOTIONS.index(fields['utt2emo'][u])}\n" for u in small))
        batches = [small[i : i + args.batch_size] for i in range(0, n, args.batch_size)]
        model_w, model_d = build_model(config), build_model(config)
        model_d.load_state_dict(model_w.state_dict())
        n_train = sum(p.numel() for p in model_w.parameters() if p.requires_grad)
        n_params = sum(p.numel() for p in model_w.parameters())
        print(f"SERTask model: {n_params / 1e6:.2f} M parameters, {n_train} trainable "
              f"(the SSL model is frozen); {len(batches)} batches of <= {args.batch_size}")
        if not model_w.encoder.use_attention_mask:
            print("note: no attention mask (group-norm feature extractor): a padded waveform "
                  "batch gives slightly different states than the single utterances dumped, "
                  "so the two epochs differ numerically")
        times = []
        for what, model, dump in (("running the encoder on waveforms:", model_w, "dump_raw"),
                                  ("reading dumped hidden states:    ", model_d, "dump_states")):
            t, loss = train_epoch(model, work / dump / "feats.scp", emotion_file, batches)
            print(f"(a) epoch {what} {t:8.3f} s (mean loss {loss:.4f})")
            times.append(t)
        diff = max(float((a - b).abs().max()) for a, b in zip(
            model_w.state_dict().values(), model_d.state_dict().values()))
        print(f"(a) speedup: {times[0] / times[1]:.1f}x; max |parameter difference| after the "
              f"epoch: {diff:.2e}")
        if not args.skip_memory:
            print("(b) hidden-state extraction through the extract_feats CLI, a fresh process "
                  "each (peak RSS after imports and model build -> peak RSS at the end):")
            run_4n = extract_in_subprocess(config, work / "all", work / "dump_states_4n",
                                           args.num_threads, args.compress)
            for what, (base, peak, took) in ((f"  N={n:4d}", (base_n, peak_n, took_n)),
                                             (f" 4N={4 * n:4d}", run_4n)):
                print(f"(b) {what}: {base / 1024:7.1f} MiB -> {peak / 1024:7.1f} MiB ({took:.1f} s)")
            print(f"(b) peak ratio 4N/N: {run_4n[1] / peak_n:.3f}")
        print(f"total benchmark time: {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
