"""The filterbank equals ESPnet's DefaultFrontend; GST-Tacotron's input mel
(``normalization: tacotron``, conf/fbank_gst_tacotron.yaml) equals an independent numpy
computation of its formula (trim, pre-emphasis, |STFT|, mel, 20 log10, shift / scale, clip),
and the dump and the decoding path compute the same matrices."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2.asr.frontend.default import DefaultFrontend
from espnet_ser.bin import extract_feats
from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.features.audio import load_utterance
from espnet_ser.features.extractor import Extractor, FeatureError
from espnet_ser.features.fbank import FbankExtractor, load_fbank_config


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


@pytest.mark.parametrize("n_samples", [257, 16000])
def test_all_zero_audio_gives_finite_features(fbank_conf, n_samples):
    extractor = FbankExtractor.from_yaml(fbank_conf)
    feats = extractor(np.zeros(n_samples, dtype=np.float32))
    assert feats.shape == (n_samples // 256 + 1, 80)
    assert np.all(np.isfinite(feats))
    np.testing.assert_allclose(feats, np.log(1e-10), rtol=1e-6)  # ESPnet's LogMel floor


def test_non_finite_features_are_refused(fbank_conf):
    extractor = FbankExtractor.from_yaml(fbank_conf)
    wave = np.zeros(4000, dtype=np.float32)
    wave[100] = np.inf
    with pytest.raises(FeatureError, match="NaN or infinite"):
        extractor(wave)


# ---------------------------------------------------------------- normalization: tacotron

REPO = Path(__file__).resolve().parents[2]
TACOTRON_CONF = REPO / "conf" / "fbank_gst_tacotron.yaml"


def synthetic_wave(seconds=1.0, amplitude=0.3, silence=0.25, fs=16000, seed=0):
    """Silence, a two-tone burst with noise, silence (float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    voiced = amplitude * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t))
    voiced += 0.01 * rng.standard_normal(len(t))
    pad = 1e-5 * rng.standard_normal(int(silence * fs))
    return np.concatenate([pad, voiced, pad]).astype(np.float32)


def tacotron_reference(wave, fs=16000, n_fft=2048, win=800, hop=200, n_mels=80, preemphasis=0.97,
                       ref_db=20.0, max_db=100.0, top_db=None):
    """GST-Tacotron's formula in numpy (float64), with its own STFT."""
    y = np.asarray(wave, dtype=np.float64)
    if top_db is not None:
        y, _ = librosa.effects.trim(y, top_db=top_db)
    y = np.append(y[0], y[1:] - preemphasis * y[:-1])
    y = np.pad(y, n_fft // 2, mode="reflect")
    n = np.arange(win)
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)  # periodic Hann
    frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    magnitude = np.abs(np.fft.rfft(y[idx] * window, axis=1))  # (frames, 1 + n_fft / 2)
    mel = magnitude @ librosa.filters.mel(sr=fs, n_fft=n_fft, n_mels=n_mels).T
    db = 20 * np.log10(np.maximum(1e-5, mel))
    return np.clip((db - ref_db + max_db) / max_db, 1e-8, 1)


def test_the_shipped_config_is_the_tacotron_normalisation():
    conf = load_fbank_config(TACOTRON_CONF)
    assert conf["normalization"] == "tacotron"
    assert (conf["preemphasis"], conf["ref_db"], conf["max_db"], conf["trim_top_db"]) == (0.97, 20, 100, 60)
    assert (conf["n_fft"], conf["win_length"], conf["hop_length"], conf["n_mels"]) == (2048, 800, 200, 80)


@pytest.mark.parametrize("top_db", [None, 60])
def test_tacotron_mel_matches_an_independent_numpy_computation(tmp_path, top_db):
    conf = yaml.safe_load(TACOTRON_CONF.read_text())
    conf["trim_top_db"] = top_db
    extractor = FbankExtractor(**conf)
    wave = synthetic_wave()
    got = extractor(wave)
    want = tacotron_reference(wave, top_db=top_db)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)
    if top_db is None:
        assert got.shape[0] == len(wave) // 200 + 1
    else:  # the leading and trailing silence are cut
        assert got.shape[0] < (len(wave) // 200 + 1) - 20


def test_tacotron_mel_lies_in_zero_one_and_reaches_both_clips():
    conf = dict(load_fbank_config(TACOTRON_CONF), trim_top_db=None)
    extractor = FbankExtractor(**conf)
    out = extractor(synthetic_wave(amplitude=0.9, silence=0.2))
    assert out.min() >= 1e-8 and out.max() <= 1.0 and out.max() > 0.5
    assert out.min() == np.float32(1e-8)  # near-silent frames: clipped at 1e-8
    # a mel magnitude above ref_db (20 dB) is clipped at 1
    loud = extractor(synthetic_wave(amplitude=8.0, silence=0.2))
    assert loud.max() == 1.0 and loud.min() >= 1e-8
    # the natural-log power mel of conf/fbank_gst.yaml is something else altogether
    log = FbankExtractor.from_yaml(REPO / "conf" / "fbank_gst.yaml")(synthetic_wave(amplitude=0.9, silence=0.2))
    assert log.shape == out.shape and log.min() < 0


def test_a_wave_trimmed_to_nothing_is_used_whole():
    # a 4096-point FFT needs 2049 samples; trimming a lone click leaves 1536
    conf = dict(load_fbank_config(TACOTRON_CONF), n_fft=4096)
    wave = np.zeros(20000, dtype=np.float32)
    wave[0] = 0.5
    assert len(librosa.effects.trim(wave, top_db=60)[0]) < 2049
    out = FbankExtractor(**conf)(wave)
    assert out.shape[0] == 20000 // 200 + 1


@pytest.mark.parametrize("extra, message", [
    ({"preemphasis": 0.97}, "preemphasis only apply with normalization: tacotron"),
    ({"normalization": "db"}, "normalization: 'db'"),
    ({"normalization": "tacotron", "preemphasis": 1.0}, r"preemphasis: 1.0 is outside \[0, 1\)"),
    ({"normalization": "tacotron", "max_db": 0}, "max_db: 0 must be positive"),
    ({"normalization": "tacotron", "trim_top_db": -3}, "trim_top_db: -3"),
    ({"normalization": "tacotron", "ref_db": "20dB"}, "ref_db: expected a number"),
])
def test_bad_normalisation_fields_are_named(tmp_path, extra, message):
    conf = dict(yaml.safe_load((REPO / "conf" / "fbank_gst.yaml").read_text()), **extra)
    path = tmp_path / "gst.yaml"
    path.write_text(yaml.safe_dump(conf))
    with pytest.raises(FeatureError, match=message) as e:
        load_fbank_config(path)
    assert str(path) in str(e.value)
    with pytest.raises(FeatureError, match=message):
        FbankExtractor(**conf)


def test_the_default_log_mel_config_is_unchanged():
    extractor = FbankExtractor.from_yaml(REPO / "conf" / "fbank_gst.yaml")
    assert "normalization" not in extractor.conf  # dumps made before keep their config
    explicit = FbankExtractor(**dict(load_fbank_config(REPO / "conf" / "fbank_gst.yaml"), normalization="log"))
    assert explicit.conf == extractor.conf


def test_dump_and_decoding_compute_the_same_tacotron_mel(tmp_path, make_data):
    """extract_feats (stage 3) and Speech2TextEmotion.style_features (decoding a wave)."""
    from espnet_ser.asr.inference import STYLE_FEATS_CONFIG, Speech2TextEmotion
    from espnet_ser.tasks.asr_ser import ASRSERTask

    data = make_data([12000, 20000])
    out = tmp_path / "dump" / "gst_fbank_tacotron" / "all"
    extract_feats.main(["--config", str(TACOTRON_CONF), "--data_dir", str(data), "--out_dir", str(out)])
    assert yaml.safe_load((out / "fbank.yaml").read_text())["normalization"] == "tacotron"
    # the dump's config records the normalisation: a log-mel dump is not mixed into it
    with pytest.raises(SystemExit):
        extract_feats.main(["--config", str(REPO / "conf" / "fbank_gst.yaml"), "--data_dir", str(data),
                            "--out_dir", str(out)])

    exp = tmp_path / "exp"
    exp.mkdir()
    tokens = ["<blank>", "<unk>", "<ang>", "<hap>", "<neu>", "<sad>", "hello", "<sos/eos>"]
    (exp / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
    args = ASRSERTask.get_parser().parse_args([
        "--token_list", str(exp / "tokens.txt"), "--token_type", "word", "--input_size", "20",
        "--normalize", "none", "--encoder", "gst_conformer", "--encoder_conf", "output_size=16",
        "--encoder_conf", "attention_heads=2", "--encoder_conf", "linear_units=16",
        "--encoder_conf", "num_blocks=1", "--decoder", "transformer", "--decoder_conf", "attention_heads=2",
        "--decoder_conf", "linear_units=16", "--decoder_conf", "num_blocks=1",
        "--style_encoder", "gst", "--style_encoder_conf", "n_mels=80",
        "--style_encoder_conf", "conv_channels=[4,4]", "--style_encoder_conf", "ref_dim=8",
        "--style_encoder_conf", "n_tokens=3", "--style_encoder_conf", "n_heads=2",
        "--style_encoder_conf", "style_dim=8"])
    model = ASRSERTask.build_model(args)
    with (exp / "config.yaml").open("w") as f:
        yaml.safe_dump(vars(args), f)
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    (exp / STYLE_FEATS_CONFIG).write_text(TACOTRON_CONF.read_text())  # as stage 4 keeps it
    s2t = Speech2TextEmotion.from_exp_dir(exp, beam_size=1)

    import kaldiio
    import soundfile

    wavs = read_kaldi_map(data / "wav.scp")
    for utt, loc in read_kaldi_map(out / "feats.scp").items():
        wave, fs = soundfile.read(wavs[utt], dtype="float32")
        np.testing.assert_array_equal(s2t.style_features(wave, fs), kaldiio.load_mat(loc))
