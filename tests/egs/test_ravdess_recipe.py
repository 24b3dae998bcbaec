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

from espnet_ser.bin.ravdess_settings import SettingsError, recipe_options
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
    assert len(read_kaldi_map(d / "dump/raw_16000/random_test/feats.scp")) == 39  # ceil(0.2 * 192) = 39: 5 of seven emotions, 4 of one


def test_random_protocol_scores_the_last_epoch(recipe):
    d, proc = recipe
    exp = d / "exp" / "ser_tiny_random"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["emotions"] == EMOTIONS and config["encoder"] == "ssl"
    names = sorted(x[1] for x in config["train_data_path_and_name_and_type"])
    assert names == ["emotion", "speech"]  # no transcript without CTC
    score = exp / "decode_2epoch" / "random_test" / "score"
    scores = json.loads((score / "scores.json").read_text())
    assert scores["n"] == 39 and 0.0 <= scores["wa"] <= 100.0
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


# --------------------------------------------------------------------------------------
# --paper_steps: the paper's checkpoints through --num_iters_per_epoch
# --------------------------------------------------------------------------------------
RECIPE = REPO / "egs" / "ravdess"
PAPER_STEPS = {"train_ser_wav2vec2_base": 1300, "train_ser_xls_r_300m": 800,
               "train_ser_xls_r_1b": 500, "train_ser_hubert_large": 600}


@pytest.mark.parametrize("name, steps", sorted(PAPER_STEPS.items()))
def test_paper_steps_give_the_papers_checkpoint_and_schedule(name, steps):
    options = recipe_options(RECIPE / "conf" / "tuning" / f"{name}.yaml", "random", steps)
    # "epochs" of 100 updates = 200 mini-batches of 4 (accum_grad 2), stopped at step S,
    # under the schedule of the paper's whole run: 10 x (1152 / 4 // 2) = 1440 updates
    assert options == [
        "--inference_model", f"{steps // 100}epoch.pth",
        "--exp_tag", f"_steps{steps}",
        "--ser_args", f"--num_iters_per_epoch 200 --max_epoch {steps // 100} "
                      f"--scheduler_conf total_steps=1440",
    ]


def test_paper_steps_keep_the_users_options_last():
    options = recipe_options(RECIPE / "conf" / "train_ser.yaml", "actor", 300,
                             ser_args="--patience 2", exp_tag="_try")
    assert options[options.index("--exp_tag") + 1] == "_try_steps300"
    assert options[options.index("--ser_args") + 1].endswith("total_steps=1440 --patience 2")


def test_without_paper_steps_the_random_protocol_scores_its_last_epoch():
    config = RECIPE / "conf" / "train_ser.yaml"
    assert recipe_options(config, "random") == ["--inference_model", "10epoch.pth"]
    assert recipe_options(config, "random", ser_args="--max_epoch 3") == [
        "--inference_model", "3epoch.pth", "--ser_args", "--max_epoch 3"]
    assert recipe_options(config, "actor") == []  # best epoch by validation UA


@pytest.mark.parametrize("steps, ser_args, message", [
    (1250, "", "positive multiple of 100"),
    (0, "", "positive multiple of 100"),
    (1500, "", "past the end of the paper's run \\(1440 updates\\)"),
    (800, "--max_epoch 4", "remove --max_epoch from --ser_args"),
    (800, "--num_iters_per_epoch=50", "remove --num_iters_per_epoch"),
])
def test_bad_paper_steps_are_refused(steps, ser_args, message):
    with pytest.raises(SettingsError, match=message):
        recipe_options(RECIPE / "conf" / "train_ser.yaml", "random", steps, ser_args=ser_args)


def test_paper_steps_need_a_schedule_of_explicit_length(tmp_path):
    config = yaml.safe_load((RECIPE / "conf" / "train_ser.yaml").read_text())
    config.update(scheduler="piecewiselinearwarmuplr",
                  scheduler_conf=dict(warmup_steps_list=[0, 1440], warmup_lr_list=[1e-4, 0.0]))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SettingsError, match="c.yaml: --paper_steps needs scheduler: "
                                            "warmuplinearlr.*found scheduler: piecewise"):
        recipe_options(tmp_path / "c.yaml", "random", 800)


def test_the_recipe_trains_and_scores_the_step_checkpoint(recipe, recipe_tools):
    d, _ = recipe
    config = yaml.safe_load(recipe_tools[1]())
    # 1152 / 16 = 72 updates an "epoch" of the paper's run, 10 epochs: a schedule of 720
    config.update(max_epoch=10, scheduler="warmuplinearlr", scheduler_conf=dict(warmup_ratio=0.1))
    (d / "conf" / "tinywl.yaml").write_text(yaml.safe_dump(config))
    proc = run(d, "--paper_steps", "100", "--stage", "4", "--stop-stage", "5",
               "--train_config", "conf/tinywl.yaml", "--decode_nj", "1")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    exp = d / "exp" / "ser_tinywl_steps100_random"
    trained = yaml.safe_load((exp / "config.yaml").read_text())
    assert trained["num_iters_per_epoch"] == 100 and trained["max_epoch"] == 1
    assert trained["scheduler_conf"]["total_steps"] == 720
    assert ("warmuplinearlr: 720 updates (scheduler_conf.total_steps; this run: 100 per epoch "
            "x 1 epochs = 100), warm-up 72") in (exp / "train.log").read_text()
    hyp = read_kaldi_map(exp / "decode_1epoch" / "random_test" / "emotion")  # step 100's model
    assert set(hyp) == set(read_kaldi_map(d / "dump/raw_16000/random_test/feats.scp"))
