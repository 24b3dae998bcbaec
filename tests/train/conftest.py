"""Shared by the training tests: a tiny ASR+SER training set and its command line."""

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def write_data(d, n_utts=8, dim=20, seed=0):
    """feats.scp / text / token list / shape files for a tiny training set."""
    import kaldiio

    rng = np.random.default_rng(seed)
    words = ["<ang>", "<hap>", "<neu>", "<sad>", "hello", "world", "yes", "no"]
    tokens = ["<blank>", "<unk>", *words, "<sos/eos>"]
    (d / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
    ark, scp = d / "feats.ark", d / "feats.scp"
    text, shape = [], []
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        for i in range(n_utts):
            utt = f"utt{i:03d}"
            n = int(rng.integers(30, 60))
            w(utt, rng.standard_normal((n, dim)).astype(np.float32))
            text.append(f"{utt} {words[i % 4]} " + " ".join(rng.choice(words[4:], 3)))
            shape.append(f"{utt} {n},{dim}")
    (d / "text").write_text("\n".join(text) + "\n")
    (d / "shape").write_text("\n".join(shape) + "\n")
    return d


def tiny_args(d, out, batch_type="unsorted"):
    """ASRSERTask options training a tiny conformer AED on the set of :func:`write_data`."""
    return [
        "--output_dir", str(out), "--token_list", str(d / "tokens.txt"),
        "--token_type", "word", "--input_size", "20", "--normalize", "none",
        "--train_data_path_and_name_and_type", f"{d / 'feats.scp'},speech,kaldi_ark",
        "--train_data_path_and_name_and_type", f"{d / 'text'},text,text",
        "--valid_data_path_and_name_and_type", f"{d / 'feats.scp'},speech,kaldi_ark",
        "--valid_data_path_and_name_and_type", f"{d / 'text'},text,text",
        "--train_shape_file", str(d / "shape"), "--valid_shape_file", str(d / "shape"),
        "--encoder", "conformer", "--encoder_conf", "output_size=16",
        "--encoder_conf", "attention_heads=2", "--encoder_conf", "linear_units=16",
        "--encoder_conf", "num_blocks=1", "--encoder_conf", "cnn_module_kernel=3",
        "--decoder", "transformer", "--decoder_conf", "attention_heads=2",
        "--decoder_conf", "linear_units=16", "--decoder_conf", "num_blocks=1",
        "--batch_type", batch_type, "--batch_size", "2", "--num_workers", "0",
        "--ngpu", "0", "--seed", "3", "--use_matplotlib", "false",
        "--use_tensorboard", "false", "--num_att_plot", "0",
    ]


def single_thread_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def kit():
    return SimpleNamespace(write_data=write_data, tiny_args=tiny_args, env=single_thread_env)
