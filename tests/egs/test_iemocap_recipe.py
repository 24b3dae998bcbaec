"""Smoke run of the IEMOCAP recipe on a tiny tree in the release's layout.

Five sessions of a few synthetic utterances each; two folds of a tiny GST model run
stages 1-6, then the table across folds. Checks the fold sets, the features extracted
once and shared by the folds, the GST dumps, the style data reaching training and
decoding, and the cross-fold summary. The recipe is copied to a temporary tree.
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
from espnet_ser.features.dump import dump_config

REPO = Path(__file__).resolve().parents[2]
EMOS = ["neu", "hap", "ang", "sad", "exc", "fru"]
WORDS = "the cat sat on a mat we go home now it is late i know you".split()

TINY_GST = """
model: asr_ser
model_conf: {ctc_weight: 0.3, lsm_weight: 0.1}
encoder: gst_conformer
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 2,
               input_layer: conv2d, macaron_style: true, pos_enc_layer_type: rel_pos,
               selfattention_layer_type: rel_selfattn, rel_pos_type: latest,
               use_cnn_module: true, cnn_module_kernel: 7, cond_layers: [1]}
style_encoder: gst
style_encoder_conf: {n_mels: 80, conv_channels: [8, 8, 16], ref_dim: 16, n_tokens: 4,
                     n_heads: 2, style_dim: 16}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
optim: adam
optim_conf: {lr: 0.002}
batch_type: unsorted
batch_size: 8
max_epoch: 2
num_workers: 0
best_model_criterion: [[valid, acc, max]]
keep_nbest_models: 1
"""


def make_tree(root: Path, per_session: int = 6, no_words: bool = False) -> Path:
    """IEMOCAP_full_release/Session{1..5} with consensus labels, transcripts and 16 kHz wavs.

    ``no_words``: Ses01M also says a neutral "[LAUGHTER]" (an utterance with no words).
    """
    rng = np.random.default_rng(0)
    for n in range(1, 6):
        ses = root / f"Session{n}"
        dialog = f"Ses0{n}F_impro01"
        emo_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        tr_lines = []
        for i in range(per_session):
            spk = "F" if i % 2 == 0 else "M"
            utt = f"{dialog}_{spk}{i:03d}"
            label = EMOS[(i + n) % len(EMOS)]
            emo_lines += [f"[{i}.0000 - {i + 1}.5000]\t{utt}\t{label}\t[2.5000, 3.0000, 3.5000]",
                          f"C-E2:\t{label.title()};\t()", ""]
            words = " ".join(rng.choice(WORDS, size=4)).capitalize() + "."
            if no_words and n == 1 and i == 1:
                label, words = "neu", ""
                emo_lines[-3] = f"[{i}.0000 - {i + 1}.5000]\t{utt}\t{label}\t[2.5000, 3.0000, 3.5000]"
            tr_lines.append(f"{utt} [{i:03d}.0000-{i + 1:03d}.5000]: {words} [LAUGHTER]")
            t = np.arange(int(16000 * rng.uniform(1.2, 1.8))) / 16000
            wave = 0.2 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.02 * rng.standard_normal(len(t))
            wav = ses / "sentences" / "wav" / dialog / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(wav), wave.astype(np.float32), 16000, subtype="PCM_16")
        (ses / "dialog" / "EmoEvaluation" / "Categorical").mkdir(parents=True)
        (ses / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(emo_lines) + "\n")
        (ses / "dialog" / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
            f"{dialog}_F000 :Neutral state; ()\n")
        (ses / "dialog" / "transcriptions").mkdir(parents=True)
        (ses / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(tr_lines) + "\n")
    return root


def iemocap_recipe(recipe_tools, root: Path) -> Path:
    """egs/iemocap copied under root, with a tiny GST config and a small-beam decoding config."""
    d = recipe_tools[0]("iemocap", root)
    (d / "conf" / "tiny_gst.yaml").write_text(TINY_GST)
    (d / "conf" / "decode_tiny.yaml").write_text("beam_size: 2\nctc_weight: 0.3\nmaxlenratio: 0.5\n")
    return d


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools):
    root = tmp_path_factory.mktemp("iemocap")
    tree = make_tree(root / "IEMOCAP_full_release")
    d = iemocap_recipe(recipe_tools, root)
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(
        ["./run.sh", "--iemocap_root", str(tree), "--folds", "1 2", "--stage", "1", "--stop-stage", "6",
         "--train_config", "conf/tiny_gst.yaml", "--decode_config", "conf/decode_tiny.yaml",
         "--nbpe", "30", "--nbest_avg", "1", "--avg_metric", "valid.acc", "--nj", "2", "--decode_nj", "1"],
        cwd=d, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return d, proc


def test_fold_sets_and_shared_features(recipe):
    d, _ = recipe
    for k in range(1, 6):
        for part in ("train", "valid", "test"):
            assert (d / "data" / f"fold{k}_{part}" / "utt2emo").is_file()
    test1 = read_kaldi_map(d / "data/fold1_test/utt2spk")
    assert set(test1.values()) == {"Ses01F", "Ses01M"}
    # features extracted once (iemocap_all); fold dumps point into the same arks
    every = read_kaldi_map(d / "dump/fbank/iemocap_all/feats.scp")
    for dset in ("fold1_train", "fold1_test", "fold2_valid"):
        scp = read_kaldi_map(d / "dump/fbank" / dset / "feats.scp")
        assert scp and all(every[u] == v for u, v in scp.items())
        assert not (d / "dump/fbank" / dset / "split1").exists()
    assert not (d / "dump/fbank/fold3_train").exists()  # only the folds asked for
    # the GST log-mel: 12.5 ms frames, against 16 ms for the AED features
    u = next(iter(every))
    gst = kaldiio.load_mat(read_kaldi_map(d / "dump/gst_fbank/iemocap_all/feats.scp")[u])
    aed = kaldiio.load_mat(every[u])
    assert gst.shape[1] == 80 and gst.shape[0] > 1.2 * aed.shape[0]
    # CMVN per fold: each fold's own training set
    assert (d / "dump/fbank/fold1_train/feats_stats.npz").is_file()
    assert (d / "dump/fbank/fold2_train/feats_stats.npz").is_file()


def test_per_fold_training_reads_the_gst_features(recipe):
    d, _ = recipe
    for k in (1, 2):
        exp = d / "exp" / f"asr_tiny_gst_bpe30_emoend_fold{k}"
        config = yaml.safe_load((exp / "config.yaml").read_text())
        data = {x[1]: x[0] for x in config["train_data_path_and_name_and_type"]}
        assert sorted(data) == ["speech", "style_speech", "text"]
        assert data["style_speech"].endswith(f"gst_fbank/fold{k}_train/feats.scp")
        assert config["style_encoder"] == "gst"
        assert (d / f"data/token_bpe30_emoend_fold{k}/tokens.txt").is_file()
        hyp = read_kaldi_map(exp / "decode_decode_tiny" / f"fold{k}_test" / "text", allow_empty_value=True)
        assert sorted(hyp) == sorted(read_kaldi_map(d / f"data/fold{k}_test/text"))


def test_table_across_folds(recipe):
    d, proc = recipe
    cv = d / "exp/asr_tiny_gst_bpe30_emoend_cv/decode_decode_tiny/cv_test/score"
    summary = json.loads((cv / "cv_summary.json").read_text())
    assert sorted(summary["folds"]) == ["fold1", "fold2"]
    n = [summary["folds"][f]["num_utts"] for f in ("fold1", "fold2")]
    assert summary["pooled"]["num_utts"] == sum(n)
    wa = [summary["folds"][f]["wa"] for f in ("fold1", "fold2")]
    assert summary["mean"]["wa"] == pytest.approx(sum(wa) / 2)
    results = (d / "RESULTS.md").read_text()
    assert "cv_test" in results and "fold1_test" in results and "fold2_test" in results


def test_missing_corpus_fails_in_stage_1_naming_the_path(tmp_path, recipe_tools):
    d = iemocap_recipe(recipe_tools, tmp_path)
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(["./run.sh", "--iemocap_root", str(tmp_path / "nowhere"), "--stop-stage", "1"],
                          cwd=d, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = (d / "exp/log/data.log").read_text()
    assert "nowhere" in log and "--iemocap_root" in log
    assert not (d / "data" / "fold1_train").exists()


TINY_PT = TINY_GST.replace("num_blocks: 2,\n", "num_blocks: 2, activation_type: swish,\n")


def zoo_builder():
    """The pretrained tests' module: builds a small stock ESPnet model (model-zoo layout)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_builder", REPO / "tests/asr/test_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stock_zoo(root: Path, rel_pos_type: str = "legacy") -> dict:
    """A small stock ESPnet model; by default with ESPnet's legacy relative positional
    encoding (no rel_pos_type in its config), as the GigaSpeech conformer."""
    return zoo_builder().make_zoo(root, rel_pos_type)


def starting_encoder_outputs(recipe: Path, exp: Path, pre: Path, zoo: dict):
    """Encoder outputs of the stock model and of the model stage 4 trained from.

    The latter is built from the experiment's config.yaml (what ESPnet's trainer built)
    and initialised from its init_param entries by ESPnet's own loader, on the dumped
    features of a pseudo-random wave, with a random style (the style FFN starts at zero).
    """
    import argparse
    import contextlib

    import torch
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    from espnet_ser.features.fbank import FbankExtractor
    from espnet_ser.tasks.asr_ser import ASRSERTask

    builder = zoo_builder()
    wave = builder.wave(20000, seed=5)
    feats = torch.from_numpy(FbankExtractor.from_yaml(pre / "feats_config.yaml")(wave))[None]
    with contextlib.chdir(recipe):
        config = yaml.safe_load((exp / "config.yaml").read_text())
        model = ASRSERTask.build_model(argparse.Namespace(**config))
        for p in config["init_param"]:
            load_pretrained_model(p, model, ignore_init_mismatch=False)
    model.eval()
    style = torch.randn(1, model.encoder.style_dim)
    with torch.no_grad():
        start, _ = model.encode(feats, torch.tensor([feats.size(1)]), style=style)
        stock, _ = builder.stock_model(zoo).encode(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
    return stock, start


def test_pretrained_model_initialises_a_gst_fold(tmp_path, recipe_tools):
    """--pretrained_dir: its tokenizer, features, statistics and parameters; GST on top."""
    tree = make_tree(tmp_path / "IEMOCAP_full_release")
    zoo = stock_zoo(tmp_path / "zoo")
    d = iemocap_recipe(recipe_tools, tmp_path)
    (d / "conf" / "tiny_pt.yaml").write_text(TINY_PT)
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    py = str(REPO / "tools" / "venv" / "bin" / "python")
    pre = d / "exp" / "pretrained"
    proc = subprocess.run(
        [py, "-m", "espnet_ser.bin.extend_pretrained", "--asr_config", str(zoo["config"]),
         "--asr_model_file", str(zoo["model"]), "--add_tokens", "<ang> <hap> <neu> <sad>",
         "--output_dir", str(pre), "--dumped_feats", "true"],
        cwd=d, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        ["./run.sh", "--iemocap_root", str(tree), "--folds", "1", "--stage", "1", "--stop-stage", "4",
         "--pretrained_dir", "exp/pretrained", "--train_config", "conf/tiny_pt.yaml",
         "--asr_args", "--max_epoch 1", "--nj", "2"],
        cwd=d, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    tok = d / "data/token_pretrained_emoend_fold1"
    assert (tok / "tokens.txt").read_text() == (pre / "tokens.txt").read_text()
    assert "THE" in (tok / "fold1_train" / "text").read_text()  # upper-cased like the zoo's vocabulary
    exp = d / "exp/asr_tiny_pt_pretrained_emoend_fold1"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["init_param"][0] == "exp/pretrained/model.pth"
    assert config["normalize_conf"]["stats_file"] == "exp/pretrained/feats_stats.npz"
    assert "Loading pretrained params from exp/pretrained/model.pth" in (exp / "train.log").read_text()
    # the model training started from computes exactly what the stock model computes: the
    # pretrained legacy relative positions, not the training config's rel_pos_type: latest
    stock, start = starting_encoder_outputs(d, exp, pre, zoo)
    assert (stock - start).abs().max().item() == 0.0
    assert config["encoder"] == "gst_conformer" and config["encoder_conf"]["cond_layers"] == [1]
    assert config["encoder_conf"]["rel_pos_type"] == "legacy"
    log = (exp / "pretrained_config.log").read_text()
    assert 'encoder_conf.rel_pos_type: "latest" in conf/tiny_pt.yaml -> "legacy"' in log


# --------------------------------------------------------------------------------------
# run_ser.sh: multi-task SER, leave-one-speaker-out, on the frozen-encoder fast path
# --------------------------------------------------------------------------------------
def test_loso_multitask_recipe_on_dumped_hidden_states(tmp_path, recipe_tools):
    """--loso_valid none: nine training speakers, the last epoch scored; an utterance with
    no words is tested and left out of the CTC training."""
    tree = make_tree(tmp_path / "IEMOCAP_full_release", no_words=True)
    d = iemocap_recipe(recipe_tools, tmp_path)
    tiny_ssl_config = recipe_tools[1]
    (d / "conf" / "tiny_mtl.yaml").write_text(
        tiny_ssl_config(freeze="all", ctc_weight=0.1, pooling="sum", batch_size=4))
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(
        ["./run_ser.sh", "--iemocap_root", str(tree), "--folds", "1 2", "--stage", "1",
         "--stop-stage", "6", "--train_config", "conf/tiny_mtl.yaml", "--feats_type", "ssl_states",
         "--loso_valid", "none",
         "--compress_states", "true", "--nj", "2", "--decode_nj", "1"],
        cwd=d, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    # the encoder ran once over every utterance at stage 3: 3 hidden states x 16 dims,
    # stored as Kaldi compressed matrices
    dump = d / "dump" / "ssl_states_tiny_mtl_compressed"
    assert dump_config(dump / "iemocap_all")["compress"] == \
        "kaldi_speech_feature"
    every = read_kaldi_map(dump / "iemocap_all" / "feats.scp")
    assert kaldiio.load_mat(next(iter(every.values()))).shape[1] == 3 * 16
    no_words = "Ses01M-Ses01F_impro01_M001"
    assert read_kaldi_map(d / "data/iemocap_all/utt2empty_text") == {no_words: "[LAUGHTER]"}
    folds = {}
    for k, spk in ((1, "Ses01F"), (2, "Ses01M")):
        assert set(read_kaldi_map(d / f"data/losonv{k}_test/utt2spk").values()) == {spk}
        train_spk = set(read_kaldi_map(d / f"data/losonv{k}_train/utt2spk").values())
        assert len(train_spk) == 9 and spk not in train_spk
        exp = d / "exp" / f"ser_tiny_mtl_losonv{k}"
        config = yaml.safe_load((exp / "config.yaml").read_text())
        data = {x[1]: x[0] for x in config["train_data_path_and_name_and_type"]}
        assert data["speech"] == f"dump/ssl_states_tiny_mtl_compressed/losonv{k}_train/feats.scp"
        assert data["text"] == f"data/token_char_emonone_losonv{k}/losonv{k}_train/text"  # CTC targets
        # the trainer validates on the test speaker only for its curves
        valid = {x[1]: x[0] for x in config["valid_data_path_and_name_and_type"]}
        assert valid["speech"] == f"dump/ssl_states_tiny_mtl_compressed/losonv{k}_test/feats.scp"
        # the model of the last epoch is scored
        assert os.readlink(exp / "latest.pth") == f"{config['max_epoch']}epoch.pth"
        score = exp / "decode_latest" / f"losonv{k}_test" / "score"
        folds[k] = json.loads((score / "scores.json").read_text())
        assert folds[k]["wer"] is not None  # the CTC transcript is scored
    # the utterance with no words: out of fold 1's CTC training, tested (and scored) in fold 2
    shapes = read_kaldi_map(d / "exp/ser_tiny_mtl_losonv1/shape/losonv1_train/feats_shape")
    assert no_words not in shapes and len(shapes) == len(
        read_kaldi_map(d / "data/losonv1_train/utt2spk")) - 1
    assert read_kaldi_map(d / "exp/ser_tiny_mtl_losonv1/shape/losonv1_train/filtered") == {
        no_words: "empty_text (no target token)"}
    assert no_words in read_kaldi_map(d / "exp/ser_tiny_mtl_losonv2/decode_latest/losonv2_test/emotion")
    pooled = json.loads((d / "exp/ser_tiny_mtl_losonv/score/scores.json").read_text())
    assert pooled["n"] == folds[1]["n"] + folds[2]["n"]
    assert pooled["wa"] == pytest.approx(100 * (folds[1]["correct"] + folds[2]["correct"]) / pooled["n"])
    assert "ser_tiny_mtl_losonv" in (d / "RESULTS.md").read_text()
