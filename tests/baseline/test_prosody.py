"""Tests of the prosody-only baseline (espnet_ser.baseline.prosody, bin/prosody_baseline)."""

import json

import numpy as np
import pytest
import soundfile as sf

from espnet_ser.baseline import prosody
from espnet_ser.bin import prepare_mini_emo, prosody_baseline
from espnet_ser.data.datadir import read_kaldi_map, write_kaldi_map
from espnet_ser.data.mini_emo import EMOTIONS

SR = 16000


def tone(f0, seconds=1.0, amp=0.3, vibrato=0.0):
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    # a few harmonics, like a voiced sound
    x = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    return amp * x / np.abs(x).max()


def feat(x, words=4):
    return dict(zip(prosody.FEATURE_NAMES, prosody.prosody_features(x, SR, words)))


def test_features_of_a_steady_tone():
    x = np.concatenate([np.zeros(SR // 2), tone(200.0, 2.0), np.zeros(SR // 2)])
    f = feat(x, words=4)
    assert f["f0_mean"] == pytest.approx(12.0, abs=0.3)  # 200 Hz = 12 semitones re 100 Hz
    assert f["f0_std"] < 0.3 and f["f0_range"] < 1.0
    assert f["voiced_ratio"] > 0.9
    assert f["speech_sec"] == pytest.approx(2.0, abs=0.1)
    assert f["words_per_sec"] == pytest.approx(2.0, rel=0.1)
    assert f["energy_std"] < 3.0


def test_features_follow_pitch_level_and_loudness():
    low, high = feat(tone(120.0, 1.5)), feat(tone(240.0, 1.5))
    assert high["f0_p50"] - low["f0_p50"] == pytest.approx(12.0, abs=0.5)
    wide = feat(tone(150.0, 1.5, vibrato=0.2))
    assert wide["f0_range"] > 3.0 and wide["f0_std"] > low["f0_std"]
    quiet, loud = feat(tone(150.0, 1.5, amp=0.05)), feat(tone(150.0, 1.5, amp=0.5))
    assert loud["energy_mean"] - quiet["energy_mean"] == pytest.approx(20.0, abs=0.5)


def test_noise_has_no_f0_and_silence_is_an_error():
    rng = np.random.default_rng(0)
    f = feat(0.1 * rng.standard_normal(SR))
    assert f["voiced_ratio"] < 0.1
    with pytest.raises(prosody.ProsodyError):
        prosody.prosody_features(np.zeros(SR), SR, 3)


def test_classifier_on_separable_features():
    rng = np.random.default_rng(0)
    y = ["ang", "sad"] * 50
    x = rng.standard_normal((100, len(prosody.FEATURE_NAMES)))
    x[:, 0] += np.where(np.array(y) == "ang", 3.0, -3.0)
    x[::7, 3] = np.nan  # missing F0 statistics are imputed
    pred, _ = prosody.fit_predict(x, y, x)
    assert np.mean(np.array(pred) == np.array(y)) > 0.95
    with pytest.raises(ValueError, match="fewer than two"):
        prosody.fit_predict(x, ["ang"] * 100, x)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prosody")
    prepare_mini_emo.main([
        "--out_dir", str(root / "data"), "--wav_dir", str(root / "wav"), "--nj", "2",
        "--num_train_utts", "48", "--num_valid_utts", "0", "--num_test_utts", "24",
        "--num_train_spk", "3", "--num_valid_spk", "0", "--num_test_spk", "2",
    ])
    return root


def test_cli_end_to_end(corpus, tmp_path):
    out = tmp_path / "exp/prosody_baseline/test"
    prosody_baseline.main(["--train_dir", str(corpus / "data/train"),
                           "--test_dir", str(corpus / "data/test"), "--outdir", str(out),
                           "--nj", "2"])
    hyp = read_kaldi_map(out / "hyp_utt2emo")
    ref = read_kaldi_map(corpus / "data/test/utt2emo")
    assert hyp.keys() == ref.keys()
    assert set(hyp.values()) <= set(EMOTIONS)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["num_utts"] == 24
    for key in ("wa", "ua", "train_acc"):
        assert 0.0 <= scores[key] <= 100.0
    acc = np.mean([hyp[u] == ref[u] for u in ref]) * 100
    assert scores["wa"] == pytest.approx(acc)
    assert set(scores["acc_per_emotion"]) == set(EMOTIONS)
    assert all(0.0 <= v <= 100.0 for v in scores["acc_per_emotion"].values())
    assert scores["ua"] == pytest.approx(np.mean(list(scores["acc_per_emotion"].values())))
    conf = scores["confusion"]
    assert conf["labels"] == list(EMOTIONS)
    assert sum(map(sum, conf["matrix"])) == 24
    for row in scores["confusion_percent"]:
        assert sum(row) == pytest.approx(100.0)


def test_cli_names_a_missing_wav(corpus, tmp_path):
    bad = tmp_path / "test"
    bad.mkdir()
    for name in ("text", "utt2spk", "utt2emo", "spk2utt"):
        (bad / name).write_bytes((corpus / "data/test" / name).read_bytes())
    wavs = read_kaldi_map(corpus / "data/test/wav.scp")
    victim = sorted(wavs)[3]
    wavs[victim] = str(tmp_path / "missing.wav")
    write_kaldi_map(bad / "wav.scp", wavs)
    with pytest.raises(SystemExit) as err:
        prosody_baseline.main(["--train_dir", str(corpus / "data/train"), "--test_dir",
                               str(bad), "--outdir", str(tmp_path / "out"), "--nj", "1"])
    assert victim in str(err.value) and "missing.wav" in str(err.value)
    assert not (tmp_path / "out/scores.json").exists()


def test_cli_rejects_a_silent_file(corpus, tmp_path):
    bad = tmp_path / "test"
    bad.mkdir()
    for name in ("text", "utt2spk", "utt2emo", "spk2utt"):
        (bad / name).write_bytes((corpus / "data/test" / name).read_bytes())
    wavs = read_kaldi_map(corpus / "data/test/wav.scp")
    victim = sorted(wavs)[0]
    sf.write(tmp_path / "silent.wav", np.zeros(SR, dtype=np.int16), SR)
    wavs[victim] = str(tmp_path / "silent.wav")
    write_kaldi_map(bad / "wav.scp", wavs)
    with pytest.raises(SystemExit) as err:
        prosody_baseline.main(["--train_dir", str(corpus / "data/train"), "--test_dir",
                               str(bad), "--outdir", str(tmp_path / "out"), "--nj", "1"])
    assert victim in str(err.value) and "silent" in str(err.value)
