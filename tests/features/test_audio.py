"""Audio reading checks its input and names the utterance and the wav.scp line."""

import numpy as np
import pytest
import soundfile

from espnet_ser.features.audio import AudioError, load_utterance, read_audio, read_utterance


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
    """Opted in (allow_commands=True), a benign command is run and read."""
    path = tmp_path / "p.wav"
    expected = wav_writer(path, 3000)
    got = load_utterance("p", f"cat {path} |", "wav.scp:1", 16000, allow_commands=True)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(AudioError, match=r"utterance p: command exited with status 3"):
        load_utterance("p", f"cat {path}; exit 3 |", "wav.scp:1", 16000, allow_commands=True)


def _truncated_copy(src, dst, keep_samples):
    """A wav whose header declares all of src's frames but holding only keep_samples."""
    data = src.read_bytes()
    dst.write_bytes(data[: 44 + 2 * keep_samples])  # 44-byte header, PCM-16 mono


def test_commands_are_refused_unless_allowed(tmp_path, wav_writer):
    marker = tmp_path / "marker"
    evil = f"touch {marker} |"
    for call in (
        lambda: load_utterance("u1", evil, "data/wav.scp:4", 16000),
        lambda: read_audio(evil),
        lambda: read_utterance("u1", evil, "data/wav.scp:4", None),
    ):
        with pytest.raises(AudioError) as err:
            call()
        assert "allow_commands" in str(err.value)
        assert err.value.reason is None  # a policy error: never just rejected
    with pytest.raises(AudioError, match=r"^data/wav\.scp:4: utterance u1: the wav\.scp value is a shell command"):
        load_utterance("u1", evil, "data/wav.scp:4", 16000)
    assert not marker.exists()
    # opted in, the command is run
    path = tmp_path / "ok.wav"
    expected = wav_writer(path, 3000)
    np.testing.assert_array_equal(
        load_utterance("u1", f"cat {path} |", "w:1", 16000, allow_commands=True), expected
    )


@pytest.mark.parametrize("keep", [0, 1000, 7999])
def test_truncated_wav_names_the_utterance(tmp_path, wav_writer, keep):
    full = tmp_path / "full.wav"
    wav_writer(full, 8000)
    cut = tmp_path / "cut.wav"
    _truncated_copy(full, cut, keep)
    assert soundfile.info(str(cut)).frames == keep  # libsndfile itself does not notice
    with pytest.raises(AudioError, match=rf"wav\.scp:5: utterance t: audio is truncated: the header "
                                         rf"declares 8000 frames, the file holds {keep}") as err:
        load_utterance("t", str(cut), "wav.scp:5", 16000)
    assert err.value.reason == "truncated"
    # through a command too
    with pytest.raises(AudioError, match="truncated"):
        load_utterance("t", f"cat {cut} |", "wav.scp:5", 16000, allow_commands=True)
    # an odd trailing byte (half a sample) is truncation as well
    odd = tmp_path / "odd.wav"
    odd.write_bytes(full.read_bytes()[:-1])
    with pytest.raises(AudioError, match="declares 8000 frames, the file holds 7999"):
        load_utterance("t", str(odd), "wav.scp:5", 16000)
    # the intact file passes
    assert len(load_utterance("t", str(full), "wav.scp:5", 16000)) == 8000


@pytest.mark.parametrize("content, reason", [
    (b"", "unreadable"),                           # 0 bytes
    (b"\x00\x01garbage" * 50, "unreadable"),       # garbage
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "unreadable"),  # header cut inside fmt
])
def test_corrupt_or_empty_files_name_the_utterance(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=r"wav\.scp:9: utterance c: cannot read audio") as err:
        load_utterance("c", str(path), "wav.scp:9", 16000)
    assert err.value.reason == reason


def test_zero_sample_file_is_empty(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"utterance z: audio is empty") as err:
        load_utterance("z", str(path), "wav.scp:1", 16000)
    assert err.value.reason == "empty"


def test_sample_rate_mismatch_resamples_only_when_asked(tmp_path, wav_writer):
    from scipy.signal import resample_poly

    path = tmp_path / "r.wav"
    wave8k = wav_writer(path, 8000, fs=8000)
    with pytest.raises(AudioError, match=r"utterance r: sample rate 8000 Hz but the feature config "
                                         r"expects 16000 Hz") as err:
        load_utterance("r", str(path), "wav.scp:1", 16000)
    assert err.value.reason is None
    got, rate = read_utterance("r", str(path), "wav.scp:1", 16000, resample_to_fs=True)
    assert rate == 8000 and got.dtype == np.float32 and len(got) == 16000
    np.testing.assert_allclose(got, resample_poly(wave8k.astype(np.float64), 2, 1), atol=1e-6)
    again = load_utterance("r", str(path), "wav.scp:1", 16000, resample_to_fs=True)
    np.testing.assert_array_equal(got, again)  # deterministic
    # 22050 -> 16000 (ratio 320/441)
    wav_writer(path, 22050, fs=22050)
    assert len(load_utterance("r", str(path), "w:1", 16000, resample_to_fs=True)) == 16000


def test_channel_policy(tmp_path, wav_writer):
    path = tmp_path / "three.wav"
    samples = wav_writer(path, 4000, channels=3)
    with pytest.raises(AudioError, match=r"wav\.scp:2: utterance m3: audio has 3 channels"):
        load_utterance("m3", str(path), "wav.scp:2", 16000)
    for ch in range(3):
        np.testing.assert_array_equal(
            load_utterance("m3", str(path), "w:1", 16000, channel=ch), samples[:, ch]
        )
    # the chosen channel is used as is: not a mix
    assert not np.allclose(samples[:, 1], samples.mean(axis=1))
