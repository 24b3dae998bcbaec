"""The filterbank equals ESPnet's DefaultFrontend; audio loading checks its input."""

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2.asr.frontend.default import DefaultFrontend
from espnet_ser.features.fbank import (
    AudioError,
    FbankExtractor,
    FeatureError,
    load_fbank_config,
    load_utterance,
)


def default_frontend_feats(frontend, wave):
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
    with torch.no_grad():
        feats, lens = frontend(x, torch.tensor([x.shape[1]]))
    return feats[0, : int(lens[0])].numpy()


def test_shipped_config_is_the_paper_setting(fbank_conf):
    conf = load_fbank_config(fbank_conf)
    assert conf["fs"] == 16000
    assert conf["n_mels"] == 80
    assert conf["n_fft"] == 512
    assert conf["win_length"] == 512  # 32 ms
    assert conf["hop_length"] == 256  # 16 ms
    assert conf["window"] == "hann"
    assert conf["fmin"] == 0 and conf["fmax"] == 8000


@pytest.mark.parametrize("n_samples", [257, 1000, 16000, 16000 * 3 + 123])
def test_equals_espnet_default_frontend(fbank_conf, n_samples):
    extractor = FbankExtractor.from_yaml(fbank_conf)
    # A stock DefaultFrontend, with ESPnet's own default frontend_conf (its WPE /
    # beamformer module), built from the same arguments.
    conf = yaml.safe_load(fbank_conf.read_text())
    reference = DefaultFrontend(**conf).eval()
    wave = np.random.default_rng(n_samples).uniform(-0.5, 0.5, n_samples).astype(np.float32)

    ours = extractor(wave)
    theirs = default_frontend_feats(reference, wave)

    assert ours.dtype == np.float32
    assert ours.shape == (n_samples // 256 + 1, 80) == theirs.shape
    assert extractor.num_frames(n_samples) == ours.shape[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_equals_default_frontend_on_a_wav_file(tmp_path, fbank_conf, wav_writer):
    """Reading the file the way ESPnet's sound loader does (float32) gives the same features."""
    path = tmp_path / "a.wav"
    wav_writer(path, 8000, seed=3)
    extractor = FbankExtractor.from_yaml(fbank_conf)
    wave = load_utterance("a", str(path), "wav.scp:1", 16000, min_samples=extractor.min_samples)
    espnet_wave, _ = soundfile.read(str(path), dtype="float32")
    reference = DefaultFrontend(**yaml.safe_load(fbank_conf.read_text())).eval()
    np.testing.assert_allclose(
        extractor(wave), default_frontend_feats(reference, espnet_wave), rtol=1e-6, atol=1e-6
    )


def test_non_default_arguments_are_passed_to_the_frontend():
    extractor = FbankExtractor(fs=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40)
    wave = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    reference = DefaultFrontend(fs=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40).eval()
    feats = extractor(wave)
    assert feats.shape == (4000 // 80 + 1, 40)
    np.testing.assert_allclose(feats, default_frontend_feats(reference, wave), rtol=1e-6, atol=1e-6)


def test_unknown_config_key_is_an_error(tmp_path):
    conf = tmp_path / "fbank.yaml"
    conf.write_text("fs: 16000\nnum_mel_bins: 80\n")
    with pytest.raises(FeatureError, match="num_mel_bins"):
        load_fbank_config(conf)
    with pytest.raises(FeatureError, match="num_mel_bins"):
        FbankExtractor(num_mel_bins=80)


def test_too_short_waveform_is_an_error(fbank_conf):
    extractor = FbankExtractor.from_yaml(fbank_conf)
    assert extractor.min_samples == 257
    with pytest.raises(FeatureError, match="256 samples"):
        extractor(np.zeros(256, dtype=np.float32))
    with pytest.raises(FeatureError, match="1-D"):
        extractor(np.zeros((1000, 2), dtype=np.float32))


# ---------------------------------------------------------------- load_utterance errors


def test_wrong_sample_rate_names_the_utterance(tmp_path, wav_writer):
    path = tmp_path / "x.wav"
    wav_writer(path, 4000, fs=8000)
    with pytest.raises(AudioError, match=r"data/wav\.scp:7: utterance uttX: sample rate 8000 Hz.*16000"):
        load_utterance("uttX", str(path), "data/wav.scp:7", 16000)


def test_missing_file_names_the_utterance(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match=r"wav\.scp:3: utterance u3: no such file .*nope\.wav"):
        load_utterance("u3", str(missing), "wav.scp:3", 16000)


def test_empty_audio_names_the_utterance(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"wav\.scp:1: utterance e: audio is empty"):
        load_utterance("e", str(path), "wav.scp:1", 16000)


def test_short_audio_names_the_utterance(tmp_path, wav_writer):
    path = tmp_path / "short.wav"
    wav_writer(path, 100)
    with pytest.raises(AudioError, match=r"utterance s: audio has 100 samples, fewer than the 257"):
        load_utterance("s", str(path), "wav.scp:1", 16000, min_samples=257)


def test_unreadable_audio_names_the_utterance(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(AudioError, match=r"wav\.scp:2: utterance g: cannot read audio .*garbage\.wav"):
        load_utterance("g", str(path), "wav.scp:2", 16000)


def test_multichannel_is_an_error_unless_a_channel_is_chosen(tmp_path, wav_writer):
    path = tmp_path / "stereo.wav"
    stereo = wav_writer(path, 4000, channels=2)
    with pytest.raises(AudioError, match=r"utterance m: audio has 2 channels.*--channel"):
        load_utterance("m", str(path), "wav.scp:1", 16000)
    np.testing.assert_array_equal(load_utterance("m", str(path), "w:1", 16000, channel=1), stereo[:, 1])
    with pytest.raises(AudioError, match=r"--channel 2 requested but the audio has 2"):
        load_utterance("m", str(path), "wav.scp:1", 16000, channel=2)


def test_kaldi_pipe_entries(tmp_path, wav_writer):
    path = tmp_path / "p.wav"
    expected = wav_writer(path, 3000)
    np.testing.assert_array_equal(load_utterance("p", f"cat {path} |", "wav.scp:1", 16000), expected)
    with pytest.raises(AudioError, match=r"utterance p: command exited with status 3"):
        load_utterance("p", f"cat {path}; exit 3 |", "wav.scp:1", 16000)
