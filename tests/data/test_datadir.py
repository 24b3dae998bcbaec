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


# Raw data directories, also used by tests/bin/test_validate_data_dir.py and test_fix_data_dir.py.
ROWS = [("s0_u0", "s0", "ang", "a b"), ("s0_u2", "s0", "hap", "c d"),
        ("s1_u1", "s1", "neu", "e f"), ("s1_u3", "s1", "sad", "g h")]
OPTIONAL = ("utt2dim", "utt2personality", "utt2gender", "utt2listener", "utt2fold", "utt2dialog")


def make_dir(root, rows=ROWS, extra=()):
    """Write a data directory (raw text, rows sorted by id) with existing wav files."""
    d = root / "data"
    d.mkdir()
    rows = sorted(rows)
    lines = {n: [] for n in ("wav.scp", "text", "utt2spk", "utt2emo", *extra)}
    spk2utt = {}
    for i, (utt, spk, emo, txt) in enumerate(rows):
        wav = root / f"w{i}.wav"
        wav.write_bytes(b"RIFF")
        lines["wav.scp"].append(f"{utt} {wav}")
        lines["text"].append(f"{utt} {txt}")
        lines["utt2spk"].append(f"{utt} {spk}")
        lines["utt2emo"].append(f"{utt} {emo}")
        for name in extra:
            value = " ".join(["4.5"] * 10) if name == "utt2personality" else "1"
            lines[name].append(f"{utt} {value}")
        spk2utt.setdefault(spk, []).append(utt)
    lines["spk2utt"] = [f"{s} {' '.join(u)}" for s, u in sorted(spk2utt.items())]
    for name, ls in lines.items():
        (d / name).write_text("".join(x + "\n" for x in ls), encoding="utf-8")
    return d


def edit(d, name, old, new):
    p = d / name
    data = p.read_bytes()
    assert old in data, (name, old)
    p.write_bytes(data.replace(old, new, 1))


def drop_line(d, name, utt):
    p = d / name
    p.write_bytes(b"".join(l for l in p.read_bytes().splitlines(True)
                           if l.split(b" ")[0] != utt.encode()))


def test_every_problem_is_listed(tmp_path):
    d = make_dir(tmp_path)
    edit(d, "text", b"s1_u1 e f", b"s1_u1")
    edit(d, "utt2emo", b"s0_u2 hap", b"s0_u2 fru")
    with pytest.raises(DataDirError) as exc:
        validate_data_dir(d, emotions=EMOS)
    assert len(exc.value.problems) == 2
    assert "s1_u1 has an empty transcript" in str(exc.value) and "s0_u2 has unknown" in str(exc.value)


def test_read_kaldi_map_names_line_of_bad_utf8(tmp_path):
    p = tmp_path / "text"
    p.write_bytes(b"a x\nb caf\xe9\n")
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8"):
        read_kaldi_map(p)


def test_empty_transcript_only_where_listed(tmp_path):
    from espnet_ser.data.datadir import EMPTY_TEXT_FILE, fix_data_dir

    fields = {"wav.scp": {"u1": "/a.wav", "u2": "/b.wav", "u3": "/c.wav"},
              "text": {"u1": "hello", "u2": "", "u3": ""},
              "utt2spk": {"u1": "s", "u2": "s", "u3": "s"},
              "utt2emo": {"u1": "ang", "u2": "neu", "u3": "sad"}}
    d = tmp_path / "d"
    with pytest.raises(DataDirError, match=r"text:2: utterance u2 has an empty transcript"):
        write_data_dir(d, fields)
    fields[EMPTY_TEXT_FILE] = {"u2": "[LAUGHTER]"}
    with pytest.raises(DataDirError) as e:
        write_data_dir(d, fields)
    assert str(e.value) == (f"{d / 'text'}:3: utterance u3 has an empty transcript "
                            f"(not listed in {EMPTY_TEXT_FILE})")
    fields[EMPTY_TEXT_FILE]["u3"] = "-"
    assert write_data_dir(d, fields) == 3
    assert read_kaldi_map(d / "text") == {"u1": "hello", "u2": "", "u3": ""}
    (d / EMPTY_TEXT_FILE).write_text("u2 [LAUGHTER]\n")
    with pytest.raises(DataDirError, match=r"text:3: utterance u3 has an empty value"):
        read_kaldi_map(d / "text")
    report = fix_data_dir(d)  # keeps the listed one, drops the other
    assert report.dropped == {"empty transcript": ["u3"]}
    assert read_kaldi_map(d / "text") == {"u1": "hello", "u2": ""}


def test_utt2personality_needs_ten_numbers(tmp_path):
    d = make_dir(tmp_path, extra=("utt2personality",))
    assert validate_data_dir(d, emotions=EMOS) == 4
    edit(d, "utt2personality", b"s0_u2 " + b" ".join([b"4.5"] * 10),
         b"s0_u2 " + b" ".join([b"4.5"] * 11))
    edit(d, "utt2personality", b"s1_u3 4.5", b"s1_u3 inf")
    with pytest.raises(DataDirError) as exc:
        validate_data_dir(d, emotions=EMOS)
    assert exc.value.problems == [
        f"{d}/utt2personality:2: utterance s0_u2: expected 10 numbers (speaker O C E A N, "
        "listener O C E A N), got 11 field(s)",
        f"{d}/utt2personality:4: utterance s1_u3: field 1 'inf' is not a finite number"]
