"""Tests of the ctypes wrapper of libespeak-ng (espnet_ser.data.espeak)."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from espnet_ser.data import espeak
from espnet_ser.data.espeak import ESpeak, ESpeakError, get_engine

TEXT = "the old farmer carried two baskets to the market"


def median_f0(x, sr):
    import librosa

    f0 = librosa.yin(x, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[: len(rms)][rms > 0.3 * rms.max()]))


def test_synthesizes_non_silent_float_audio():
    x, sr = get_engine().synthesize(TEXT, "en-us+m3")
    assert sr == 22050
    assert x.dtype == np.float32 and x.ndim == 1
    assert 1.0 < len(x) / sr < 6.0
    assert np.sqrt(np.mean(x ** 2)) > 0.01
    assert np.max(np.abs(x)) <= 1.0


def test_voices_differ():
    e = get_engine()
    male, sr = e.synthesize(TEXT, "en-us+m3")
    female, _ = e.synthesize(TEXT, "en-us+f4")
    scottish, _ = e.synthesize(TEXT, "en-gb-scotland+m3")
    assert median_f0(female, sr) > 1.3 * median_f0(male, sr)
    n = min(len(male), len(scottish))
    assert not np.allclose(male[:n], scottish[:n], atol=1e-3)


def test_parameters_take_effect():
    e = get_engine()
    slow, sr = e.synthesize(TEXT, "en-us+m3", rate=100)
    fast, _ = e.synthesize(TEXT, "en-us+m3", rate=300)
    assert len(slow) > 1.8 * len(fast)
    low, _ = e.synthesize(TEXT, "en-us+m3", pitch=10)
    high, _ = e.synthesize(TEXT, "en-us+m3", pitch=90)
    assert median_f0(high, sr) > 1.3 * median_f0(low, sr)
    gap0, _ = e.synthesize(TEXT, "en-us+m3", word_gap=0)
    gap5, _ = e.synthesize(TEXT, "en-us+m3", word_gap=5)
    # 8 word boundaries, 50 ms each
    assert len(gap5) - len(gap0) > 0.3 * sr
    quiet, _ = e.synthesize(TEXT, "en-us+m3", volume=40)
    loud, _ = e.synthesize(TEXT, "en-us+m3", volume=120)
    assert np.abs(loud).max() > 2 * np.abs(quiet).max()


@pytest.mark.parametrize("voice", ["xx-nowhere", "en-us+nosuchvariant", "en-gb", "", "en+m1+f1"])
def test_unknown_voice_is_a_clear_error(voice):
    with pytest.raises(ESpeakError) as err:
        get_engine().synthesize(TEXT, voice)
    assert repr(voice) in str(err.value)


def test_bad_arguments():
    e = get_engine()
    with pytest.raises(ESpeakError, match="empty"):
        e.synthesize("  ", "en-us")
    with pytest.raises(ESpeakError, match="rate"):
        e.synthesize(TEXT, "en-us", rate=20)
    with pytest.raises(ESpeakError, match="pitch"):
        e.synthesize(TEXT, "en-us", pitch=150)


def test_library_that_cannot_load(tmp_path):
    with pytest.raises(ESpeakError, match="not found"):
        ESpeak(library_path=str(tmp_path / "libespeak-ng.so"))
    bad = tmp_path / "libespeak-ng.so"
    bad.write_bytes(b"not a library")
    with pytest.raises(ESpeakError, match="cannot load"):
        ESpeak(library_path=str(bad))


def test_voice_lists():
    langs = espeak.list_languages()
    for lang in ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"):
        assert lang in langs
    variants = espeak.list_variants()
    assert {"m1", "m7", "f1", "f4"} <= set(variants)
    assert espeak.is_deterministic_variant("m1")
    assert not espeak.is_deterministic_variant("f3")  # breath noise
    with pytest.raises(ESpeakError):
        espeak.is_deterministic_variant("nosuch")


_SNIPPET = (
    "import hashlib; from espnet_ser.data.espeak import get_engine; e = get_engine(); "
    "h = [hashlib.md5(e.synthesize(t, v, seed=7)[0].tobytes()).hexdigest() "
    "for t, v in [('a red box', 'en-us+m1'), ('" + TEXT + "', 'en+f4')]]; print(*h)"
)


def test_same_calls_in_fresh_processes_give_identical_audio():
    outs = [
        subprocess.run([sys.executable, "-c", _SNIPPET], check=True, capture_output=True,
                       text=True).stdout
        for _ in range(2)
    ]
    assert outs[0] == outs[1] and len(outs[0].split()) == 2
