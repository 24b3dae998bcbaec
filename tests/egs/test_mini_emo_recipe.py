"""Smoke run of the mini_emo recipe: stages 1-6 on a tiny corpus with a tiny model.

The recipe directory is copied to a temporary tree (next to a link to the shared
TEMPLATE pipeline), so the test never writes into the repository.
"""

import json
import os
import subprocess
from pathlib import Path

import kaldiio
import pytest
import torch
import yaml

from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir

REPO = Path(__file__).resolve().parents[2]

TINY_CONFIG = """
model: asr_ser
model_conf: {ctc_weight: 0.3, lsm_weight: 0.1}
encoder: conformer
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 1,
               input_layer: conv2d, macaron_style: true, pos_enc_layer_type: rel_pos,
               selfattention_layer_type: rel_selfattn, rel_pos_type: latest,
               use_cnn_module: true, cnn_module_kernel: 7}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
optim: adam
optim_conf: {lr: 0.002}
batch_type: numel
batch_bins: 200000
max_epoch: 2
num_workers: 0
best_model_criterion: [[valid, acc, max], [valid, acc_emo, max]]
keep_nbest_models: 2
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools):
    root = tmp_path_factory.mktemp("recipe")
    d = recipe_tools[0]("mini_emo", root)
    (d / "conf" / "tiny.yaml").write_text(TINY_CONFIG)
    (d / "conf" / "decode_tiny.yaml").write_text("beam_size: 2\nctc_weight: 0.3\nmaxlenratio: 0.5\n")
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO),
               mini_emo_opts="--num_train_utts 48 --num_valid_utts 16 --num_test_utts 16 "
                             "--num_train_spk 4 --num_valid_spk 2 --num_test_spk 2")
    proc = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop-stage", "6", "--train_config", "conf/tiny.yaml",
         "--decode_config", "conf/decode_tiny.yaml", "--nbpe", "40", "--nbest_avg", "2",
         "--asr_exp", "exp/asr_tiny"],
        cwd=d, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return d, proc


def test_data_directories_validate(recipe):
    d, _ = recipe
    for s in ("train", "valid", "test"):
        n = validate_data_dir(d / "data" / s, emotions="ang hap neu sad".split(), check_audio_exists=True)
        assert n == {"train": 48, "valid": 16, "test": 16}[s]
    train_spk = set(read_kaldi_map(d / "data/train/utt2spk").values())
    test_spk = set(read_kaldi_map(d / "data/test/utt2spk").values())
    assert train_spk and test_spk and not (train_spk & test_spk)


def test_token_stage_and_features(recipe):
    d, _ = recipe
    tok = d / "data" / "token_bpe40_emoend"
    vocab = (tok / "tokens.txt").read_text().split()
    assert {"<ang>", "<hap>", "<neu>", "<sad>"} <= set(vocab)
    for line in (tok / "test" / "text").read_text().splitlines():
        assert line.split()[-1] in {"<ang>", "<hap>", "<neu>", "<sad>"}
    scp = read_kaldi_map(d / "dump/fbank/test/feats.scp")
    utt, loc = next(iter(scp.items()))
    assert kaldiio.load_mat(loc).shape[1] == 80
    assert (d / "dump/fbank/train/feats_stats.npz").is_file()


def test_training_and_decoding_artefacts(recipe):
    d, _ = recipe
    exp = d / "exp" / "asr_tiny"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["model"] == "asr_ser" and config["max_epoch"] == 2
    avg = exp / "valid.acc.ave_2best.pth"
    state = torch.load(avg, map_location="cpu")
    assert any(k.startswith("encoder.") for k in state)
    dec = exp / "decode_decode_tiny" / "test"
    hyp = read_kaldi_map(dec / "text", allow_empty_value=True, check_sorted=False)
    assert len(hyp) == 16
    utt2emo = read_kaldi_map(dec / "utt2emo")
    assert set(utt2emo.values()) <= {"ang", "hap", "neu", "sad", "none"}
    post = read_kaldi_map(dec / "emotion_posterior", allow_empty_value=True)
    for utt, value in post.items():
        if utt2emo[utt] != "none":
            probs = dict(kv.split(":") for kv in value.split())
            assert set(probs) == {"ang", "hap", "neu", "sad"}
            assert abs(sum(map(float, probs.values())) - 1) < 1e-2


def test_scoring_and_results(recipe):
    d, proc = recipe
    score = d / "exp/asr_tiny/decode_decode_tiny/test/score"
    scores = json.loads((score / "scores.json").read_text())
    for key in ("num_utts", "wer", "wer_no_emo", "ww", "uw", "wer_per_emotion", "wa", "ua",
                "acc_per_emotion", "confusion"):
        assert key in scores
    assert scores["num_utts"] == 16
    assert (score / "result.txt").read_text().count("Snt") >= 2
    assert (score / "confusion.png").stat().st_size > 1000
    results = (d / "RESULTS.md").read_text()
    assert "espnet" in results and "asr_tiny" in results and "|WA|UA|" in results.replace(" ", "")
    base = json.loads((d / "exp/prosody_baseline/test/scores.json").read_text())
    assert 0 <= base["ua"] <= 100
    assert "Stage 6" in proc.stdout


def test_rerun_skips_finished_stages_and_keeps_results(recipe):
    d, _ = recipe
    before = (d / "exp/asr_tiny/valid.acc.ave_2best.pth").stat().st_mtime
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop-stage", "5", "--train_config", "conf/tiny.yaml",
         "--decode_config", "conf/decode_tiny.yaml", "--nbpe", "40", "--asr_exp", "exp/asr_tiny"],
        cwd=d, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("already done") == 5
    assert (d / "exp/asr_tiny/valid.acc.ave_2best.pth").stat().st_mtime == before


def test_unknown_option_fails_with_help_hint(recipe):
    d, _ = recipe
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    proc = subprocess.run(["./run.sh", "--no_such_option", "1"], cwd=d, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "no-such-option" in proc.stderr and "--help" in proc.stderr
    proc = subprocess.run(["./run.sh", "--help"], cwd=d, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--emo_token_position <end>" in proc.stdout


def test_infer_cli_from_exp_dir_and_archive(recipe, tmp_path):
    d, _ = recipe
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    py = str(REPO / "tools" / "venv" / "bin" / "python")
    wav_scp = d / "data" / "test" / "wav.scp"
    first = dict(list(read_kaldi_map(wav_scp).items())[:2])
    exp = "exp/asr_tiny"
    out1 = tmp_path / "exp.jsonl"
    proc = subprocess.run([py, "-m", "espnet_ser.bin.infer", "--exp_dir", exp, "--model_file",
                           f"{exp}/valid.acc.ave_2best.pth", "--wav", *first.values(),
                           "--output", str(out1)], cwd=d, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(l) for l in out1.read_text().splitlines()]
    assert [r["utt"] for r in rows] == [Path(p).stem for p in first.values()]
    # the decoded test set used the same model and decoding settings
    hyp = read_kaldi_map(d / "exp/asr_tiny/decode_decode_tiny/test/text", allow_empty_value=True)
    for r in rows:
        assert r["text"] == hyp[r["utt"]]

    archive = tmp_path / "model.zip"
    proc = subprocess.run([py, "-m", "espnet_ser.bin.pack_model", "--exp_dir", exp, "--model_file",
                           f"{exp}/valid.acc.ave_2best.pth", "--decode_config", "conf/decode_tiny.yaml",
                           "--out", str(archive)], cwd=d, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out2 = tmp_path / "zip.jsonl"
    proc = subprocess.run([py, "-m", "espnet_ser.bin.infer", "--model_archive", str(archive),
                           "--wav", *first.values(), "--output", str(out2)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [json.loads(l) for l in out2.read_text().splitlines()] == rows

    proc = subprocess.run([py, "-m", "espnet_ser.bin.infer", "--exp_dir", exp, "--wav",
                           str(tmp_path / "missing.wav")], cwd=d, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "missing.wav" in proc.stderr
