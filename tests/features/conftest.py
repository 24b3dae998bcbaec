"""Shared fixtures for the feature tests: tiny synthetic data directories."""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_ser.data.datadir import write_data_dir

REPO = Path(__file__).resolve().parents[2]
FBANK_CONF = REPO / "conf" / "fbank.yaml"


def write_wav(path: Path, n_samples: int, fs: int = 16000, channels: int = 1, seed: int = 0):
    """Write a PCM-16 wav of band-limited noise plus a tone; return the float32 samples read back."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / fs
    sig = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.05 * rng.standard_normal(n_samples)
    if channels > 1:
        sig = np.stack([sig * (c + 1) / channels for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), sig.astype(np.float32), fs, subtype="PCM_16")
    return soundfile.read(str(path), dtype="float32")[0]


def make_data_dir(root: Path, lengths, fs: int = 16000, extra: dict = None) -> Path:
    """A valid data directory with one wav per utterance (ids utt00, utt01, ...).

    ``lengths`` gives each utterance's number of samples; ``extra`` maps an utterance id
    to a wav.scp value that replaces its file path (to inject bad entries).
    """
    data = root / "data"
    wavs = root / "wav"
    fields = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim")}
    emotions = ["ang", "hap", "neu", "sad"]
    for i, n in enumerate(lengths):
        utt = f"spk{i % 2}_utt{i:02d}"
        path = wavs / f"{utt}.wav"
        write_wav(path, n, fs=fs, seed=i)
        fields["wav.scp"][utt] = str(path)
        fields["text"][utt] = f"hello world {i}"
        fields["utt2spk"][utt] = f"spk{i % 2}"
        fields["utt2emo"][utt] = emotions[i % 4]
        fields["utt2dim"][utt] = "3.0 2.5 4.0"
    for utt, value in (extra or {}).items():
        fields["wav.scp"][utt] = value
    write_data_dir(data, fields)
    return data


@pytest.fixture
def fbank_conf() -> Path:
    return FBANK_CONF


@pytest.fixture
def make_data(tmp_path):
    """``make_data(lengths, fs=16000, extra=None)`` -> a data directory under tmp_path."""

    def _make(lengths, fs=16000, extra=None, name="corpus"):
        return make_data_dir(tmp_path / name, lengths, fs=fs, extra=extra)

    return _make


@pytest.fixture
def wav_writer():
    """``wav_writer(path, n_samples, fs=16000, channels=1, seed=0)`` -> float32 samples."""
    return write_wav
