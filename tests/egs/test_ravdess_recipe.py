"""Smoke run of the RAVDESS recipe (../TEMPLATE/ser.sh) on a tiny tree in the corpus layout.

24 actors with one 48 kHz file per emotion; a tiny random SSL encoder runs stages 1-6 on the
random 80:20 protocol, then stages 2-6 on the speaker-independent one. The recipe is copied to
a temporary tree.
"""

import json
import os
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import yaml

from espnet_ser.data.datadir import read_kaldi_map

REPO = Path(__file__).resolve().parents[2]
EMOTIONS = "neu cal hap sad ang fea dis sur".split()

def make_tree(base: Path) -> Path:
    """Actor_01 .. Actor_24, one 0.5 s file per emotion (a tone whose pitch is the emotion)."""
    root = base / "Audio_Speech_Actors_01-24"
    t = np.arange(24000) / 48000
    for actor in range(1, 25):
        for e in range(1, 9):
            stem = f"03-01-{e:02d}-01-{1 + e % 2:02d}-01-{actor:02d}"
            wave = 0.2 * np.sin(2 * np.pi * (100 + 30 * e + actor) * t)
            path = root / f"Actor_{actor:02d}" / f"{stem}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), wave.astype(np.float32), 48000, subtype="PCM_16")
    return root


def run(d: Path, *args, timeout=900):
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    return subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools):
    copy_recipe, tiny_ssl_config = recipe_tools
    root = tmp_path_factory.mktemp("ravdess")
    tree = make_tree(root / "RAVDESS")
    d = copy_recipe("ravdess", root)
    (d / "conf" / "tiny.yaml").write_text(tiny_ssl_config())
    proc = run(d, "--ravdess_root", str(tree), "--train_config", "conf/tiny.yaml",
               "--nj", "2", "--decode_nj", "1")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    actor = run(d, "--ravdess_root", str(tree), "--protocol", "actor", "--stage", "2",
                "--train_config", "conf/tiny.yaml", "--nj", "2", "--decode_nj", "1",
                "--ser_args", "--max_epoch 1")
    assert actor.returncode == 0, actor.stdout[-5000:] + actor.stderr[-3000:]
    return d, proc


def test_waveforms_resampled_once_and_shared(recipe):
    d, _ = recipe
    every = read_kaldi_map(d / "dump/raw_16000/ravdess_all/feats.scp")
    assert len(every) == 192
    u = next(iter(every))
    wave = kaldiio.load_mat(every[u])
    assert wave.ndim == 1 and len(wave) == 8000  # 0.5 s at 16 kHz
    for dset in ("random_train", "random_test", "actor_train", "actor_test"):
        scp = read_kaldi_map(d / "dump/raw_16000" / dset / "feats.scp")
        assert scp and all(every[k] == v for k, v in scp.items())
    assert len(read_kaldi_map(d / "dump/raw_16000/random_test/feats.scp")) == 40  # 5 per emotion


def test_random_protocol_scores_the_last_epoch(recipe):
    d, proc = recipe
    exp = d / "exp" / "ser_tiny_random"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["emotions"] == EMOTIONS and config["encoder"] == "ssl"
    names = sorted(x[1] for x in config["train_data_path_and_name_and_type"])
    assert names == ["emotion", "speech"]  # no transcript without CTC
    score = exp / "decode_2epoch" / "random_test" / "score"
    scores = json.loads((score / "scores.json").read_text())
    assert scores["n"] == 40 and 0.0 <= scores["wa"] <= 100.0
    assert set(scores["per_class"]) == set(EMOTIONS)
    hyp = read_kaldi_map(exp / "decode_2epoch" / "random_test" / "emotion")
    preds = {line.split()[0]: line.split()[2] for line in (score / "predictions").read_text().splitlines()}
    assert preds == hyp
    assert (score / "confusion.png").stat().st_size > 0 and (score / "curves.png").stat().st_size > 0
    assert "random_test" in (d / "RESULTS.md").read_text()
    weights = json.loads((exp / "layer_weights.json").read_text())  # layer: weighted, 2 layers
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0)
    assert "accuracy" in proc.stdout  # the classification report is printed


def test_actor_protocol_picks_the_epoch_by_validation_ua(recipe):
    d, _ = recipe
    exp = d / "exp" / "ser_tiny_actor"
    assert (exp / "valid.ua.best.pth").exists()
    scores = json.loads((exp / "decode_valid.ua.ave_1best" / "actor_test" / "score" / "scores.json").read_text())
    assert scores["n"] == 32  # actors 21-24
    assert "actor_test" in (d / "RESULTS.md").read_text()


def test_missing_corpus_root_is_named(tmp_path, recipe_tools):
    d = recipe_tools[0]("ravdess", tmp_path)
    proc = run(d, "--ravdess_root", str(tmp_path / "nowhere"), timeout=60)
    assert proc.returncode != 0 and f"{tmp_path / 'nowhere'}" in proc.stderr + proc.stdout
    assert not (d / "data").exists()
