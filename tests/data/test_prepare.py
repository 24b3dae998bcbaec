"""The steps shared by the corpus preparations (espnet_ser.data.prepare)."""

import logging

import numpy as np
import pytest
import soundfile

from espnet_ser.data.datadir import DataDirError, read_kaldi_map
from espnet_ser.data.prepare import check_out_dir, check_wav_header, visible_entries, write_sets

FIELDS = {"wav.scp": {"u1": "/a.wav", "u2": "/b.wav"}, "text": {"u1": "a", "u2": "b"},
          "utt2spk": {"u1": "s1", "u2": "s2"}, "utt2emo": {"u1": "ang", "u2": "sad"}}


def test_visible_entries_and_out_dir(tmp_path):
    for name in ("b", ".hidden", "a"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in visible_entries(tmp_path)] == ["a", "b"]
    with pytest.raises(DataDirError, match="exists and is not a directory"):
        check_out_dir(tmp_path / "a")
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"


def test_check_wav_header(tmp_path, caplog):
    wav = tmp_path / "x.wav"
    soundfile.write(str(wav), np.zeros((160, 2), dtype=np.int16), 16000)
    with pytest.raises(DataDirError, match=r"16000 Hz, 2 channel\(s\); expected 16000 Hz mono"):
        check_wav_header(wav, 16000)
    with caplog.at_level(logging.WARNING):
        check_wav_header(wav, 16000, mono=False)
    assert "2 channels (not mono)" in caplog.text
    with pytest.raises(DataDirError, match="16000 Hz; expected 48000 Hz"):
        check_wav_header(wav, 48000, mono=False)


def test_write_sets_is_all_or_nothing(tmp_path):
    out = tmp_path / "data"
    counts = write_sets(out, {"one": FIELDS}, ["ang", "sad"], "test")
    assert counts == {"one": {"num_utts": 2, "num_speakers": 2,
                              "per_emotion": {"ang": 1, "sad": 1}}}
    assert read_kaldi_map(out / "one" / "spk2utt") == {"s1": "u1", "s2": "u2"}
    bad = dict(FIELDS, utt2emo={"u1": "ang", "u2": "fru"})
    with pytest.raises(DataDirError, match="unknown emotion 'fru'"):
        write_sets(out, {"one": FIELDS, "two": bad}, ["ang", "sad"], "test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert sorted(p.name for p in out.iterdir()) == ["one"]


def check_root_options(main, option: str, tmp_path) -> None:
    """A ``prepare_<corpus>`` CLI ``main`` refuses a missing ``option`` directory naming it, and a
    missing option with argparse's exit code (used by the tests of each CLI)."""
    with pytest.raises(SystemExit) as e:
        main([option, str(tmp_path / "nope"), "--out_dir", str(tmp_path / "d2")])
    assert e.value.code == f"ERROR: {option} {tmp_path / 'nope'}: no such directory"
    with pytest.raises(SystemExit) as e:
        main(["--out_dir", str(tmp_path / "d2")])
    assert e.value.code == 2
