"""Kaldi data directories: every check names the file, line and utterance."""

import pytest

from espnet_ser.data.datadir import (
    DataDirError,
    emotion_of_token,
    emotion_token,
    read_kaldi_map,
    validate_data_dir,
    write_data_dir,
    write_kaldi_map,
)

EMOS = ["ang", "hap", "neu", "sad"]


def fields(n=4):
    f = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2emo")}
    for i in range(n):
        spk = f"s{i % 2}"
        utt = f"{spk}_u{i}"
        f["wav.scp"][utt] = f"/x/{utt}.wav"
        f["text"][utt] = f"word{i} more words"
        f["utt2spk"][utt] = spk
        f["utt2emo"][utt] = EMOS[i % 4]
    return f


def test_write_sorts_and_derives_spk2utt(tmp_path):
    assert write_data_dir(tmp_path / "d", fields(), emotions=EMOS) == 4
    lines = (tmp_path / "d" / "text").read_text().splitlines()
    assert [l.split()[0] for l in lines] == sorted(l.split()[0] for l in lines)
    assert (tmp_path / "d" / "spk2utt").read_text() == "s0 s0_u0 s0_u2\ns1 s1_u1 s1_u3\n"
    assert oct((tmp_path / "d" / "text").stat().st_mode & 0o777) != oct(0o600)


def test_utterance_missing_from_wav_scp(tmp_path):
    f = fields()
    del f["wav.scp"]["s1_u3"]
    with pytest.raises(DataDirError, match=r"utterance s1_u3 is in text but not in wav.scp|"
                                           r"utterance s1_u3 is in .* but not in wav.scp"):
        write_data_dir(tmp_path / "d", f)


def test_extra_utterance_in_text(tmp_path):
    f = fields()
    f["text"]["s9_u9"] = "hello"
    with pytest.raises(DataDirError, match="s9_u9 is in text but not in wav.scp"):
        write_data_dir(tmp_path / "d", f)


def test_unknown_emotion_names_line(tmp_path):
    f = fields()
    f["utt2emo"]["s0_u2"] = "fru"
    with pytest.raises(DataDirError, match=r"utt2emo:2: utterance s0_u2 has unknown emotion 'fru'"):
        write_data_dir(tmp_path / "d", f, emotions=EMOS)


def test_empty_transcript(tmp_path):
    f = fields()
    f["text"]["s1_u1"] = ""
    with pytest.raises(DataDirError, match=r"text:3: utterance s1_u1 has an empty transcript"):
        write_data_dir(tmp_path / "d", f)


def test_unsorted_and_duplicate_ids(tmp_path):
    p = tmp_path / "utt2emo"
    p.write_text("b ang\na hap\n")
    with pytest.raises(DataDirError, match=r"utt2emo:2: id a comes after b"):
        read_kaldi_map(p)
    assert read_kaldi_map(p, check_sorted=False) == {"b": "ang", "a": "hap"}
    p.write_text("a ang\na hap\n")
    with pytest.raises(DataDirError, match=r"utt2emo:2: duplicate id a"):
        read_kaldi_map(p)


def test_spk2utt_disagreeing_with_utt2spk(tmp_path):
    write_data_dir(tmp_path / "d", fields())
    (tmp_path / "d" / "spk2utt").write_text("s0 s0_u0\ns1 s1_u1 s1_u3\n")
    with pytest.raises(DataDirError, match=r"spk2utt:1: speaker s0 does not agree"):
        validate_data_dir(tmp_path / "d")


def test_missing_audio_is_reported(tmp_path):
    write_data_dir(tmp_path / "d", fields())
    with pytest.raises(DataDirError, match=r"wav.scp:1: utterance s0_u0: no such file /x/s0_u0.wav"):
        validate_data_dir(tmp_path / "d", check_audio_exists=True)


def test_optional_per_utterance_file_must_cover_the_same_utterances(tmp_path):
    f = fields()
    f["utt2dim"] = {u: "3.0 2.5 4.0" for u in list(f["text"])[:3]}
    with pytest.raises(DataDirError, match="but not in utt2dim"):
        write_data_dir(tmp_path / "d", f)


def test_failed_write_keeps_previous_file(tmp_path):
    p = tmp_path / "text"
    write_kaldi_map(p, {"a": "hello"})
    with pytest.raises(DataDirError):
        write_kaldi_map(p, {"a b": "bad id"})
    assert p.read_text() == "a hello\n"
    assert [x.name for x in tmp_path.iterdir()] == ["text"]


def test_emotion_tokens():
    assert emotion_token("ang") == "<ang>"
    assert emotion_of_token("<sad>") == "sad"
    assert emotion_of_token("<unk>") is None
    assert emotion_of_token("<blank>") is None and emotion_of_token("sad") is None
    for bad in ("Ang", "angry", "unk"):
        with pytest.raises(ValueError):
            emotion_token(bad)
