"""python -m espnet_ser.bin.fix_data_dir: repairs in place, never loses the originals."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_ser.bin import fix_data_dir as fix_bin
from espnet_ser.data import datadir
from espnet_ser.data.datadir import DataDirError, fix_data_dir, read_kaldi_map, validate_data_dir
from tests.data.test_datadir import ROWS, edit, make_dir

EMOS = ["ang", "hap", "neu", "sad"]


def snapshot(d):
    """Every file under d (backups and hidden files included) -> bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def backups(d):
    root = d / ".backup"
    return sorted(root.iterdir()) if root.is_dir() else []


def drop_line(name, utt):
    def mutate(d):
        p = d / name
        p.write_bytes(b"".join(l for l in p.read_bytes().splitlines(True)
                               if l.split(b" ")[0] != utt.encode()))
    return mutate


# (case, mutation of a valid dir, dropped utterance, reason printed)
REASONS = [
    *[(f"not_in_{n}", drop_line(n, "s0_u2"), "s0_u2", f"not in {n}")
      for n in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim")],
    ("empty_transcript", lambda d: edit(d, "text", b"s1_u1 e f", b"s1_u1"), "s1_u1", "empty transcript"),
    ("unknown_emotion", lambda d: edit(d, "utt2emo", b"s1_u1 neu", b"s1_u1 fru"), "s1_u1",
     "unknown emotion"),
    ("duplicate", lambda d: edit(d, "text", b"s1_u1 e f\n", b"s1_u1 e f\ns1_u1 other\n"), "s1_u1",
     "duplicate id in text"),
    ("not_utf8", lambda d: edit(d, "text", b"s1_u1 e f", b"s1_u1 caf\xe9"), "s1_u1",
     "malformed line in text"),
    ("no_value", lambda d: edit(d, "utt2emo", b"s1_u1 neu", b"s1_u1"), "s1_u1", "malformed line in utt2emo"),
    ("command", lambda d: edit(d, "wav.scp", b"s1_u1 /", b"s1_u1 cat /") or
     edit(d, "wav.scp", b"w2.wav\n", b"w2.wav |\n"), "s1_u1", "wav.scp command"),
]
BAD_IDS = [("slash", "s0/u9", "s0"), ("dotdot", "s0..u9", "s0"), ("ctrl", "s0_u\x019", "s0"),
           ("space", "s0\u00a0u9", "s0"), ("spk_slash", "s0_u9", "s/9"), ("spk_tab", "s0_u9", "s\t9")]


@pytest.mark.parametrize("case,mutate,utt,reason", REASONS, ids=[r[0] for r in REASONS])
def test_each_reason_is_dropped_and_counted(tmp_path, capsys, case, mutate, utt, reason):
    d = make_dir(tmp_path, extra=("utt2dim",))
    mutate(d)
    fix_bin.main([str(d), "--emotions", " ".join(EMOS)])
    out = capsys.readouterr().out
    assert "kept 3 of 4 utterances" in out
    assert f"dropped 1: {reason}" in out
    for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim"):
        assert list(read_kaldi_map(d / name, allow_empty_value=True)) == sorted(
            {"s0_u0", "s0_u2", "s1_u1", "s1_u3"} - {utt})
    assert validate_data_dir(d, emotions=EMOS, check_audio_exists=True) == 3


@pytest.mark.parametrize("case,utt,spk", [b for b in BAD_IDS], ids=[b[0] for b in BAD_IDS])
def test_invalid_ids_are_dropped(tmp_path, capsys, case, utt, spk):
    d = make_dir(tmp_path, rows=ROWS + [(utt, spk, "neu", "x y")])
    fix_bin.main([str(d)])
    out = capsys.readouterr().out
    assert "kept 4 of 5 utterances" in out and "dropped 1: invalid" in out
    assert validate_data_dir(d, check_audio_exists=True) == 4
    assert utt not in (d / "utt2spk").read_text()


def test_whitespace_repeats_and_order_are_repaired_not_dropped(tmp_path, capsys):
    d = make_dir(tmp_path)
    (d / "text").write_bytes(b"s1_u3 g h\r\n  s0_u0\ta b\ns0_u2 c d\ns0_u2 c d\n\ns1_u1 e f\n")
    (d / "spk2utt").write_text("s0 s0_u2 s0_u0\n")
    fix_bin.main([str(d)])
    out = capsys.readouterr().out
    assert "kept 4 of 4 utterances" in out and "  dropped " not in out
    assert (d / "text").read_text() == "s0_u0 a b\ns0_u2 c d\ns1_u1 e f\ns1_u3 g h\n"
    assert (d / "spk2utt").read_text() == "s0 s0_u0 s0_u2\ns1 s1_u1 s1_u3\n"
    validate_data_dir(d, check_audio_exists=True)


def test_backups_are_exact_and_one_per_run(tmp_path, capsys):
    d = make_dir(tmp_path, extra=("utt2fold",))
    edit(d, "utt2emo", b"s1_u1 neu", b"s1_u1 fru")
    (d / "feats.scp").write_text("s0_u0 x.ark:1\n")
    before = snapshot(d)
    fix_bin.main([str(d), "--emotions", " ".join(EMOS)])
    (first,) = backups(d)
    assert snapshot(first) == {k: v for k, v in before.items() if k != "feats.scp"}
    assert (d / "feats.scp").read_bytes() == before["feats.scp"]
    after_first = snapshot(d)
    fix_bin.main([str(d), "--emotions", " ".join(EMOS)])
    out = capsys.readouterr().out
    assert "kept 3 of 3 utterances" in out
    b1, b2 = backups(d)
    assert b1 == first and snapshot(b1) == snapshot(first)  # earlier backup untouched
    assert snapshot(b2) == {k: v for k, v in after_first.items()
                            if not k.startswith(".backup") and k != "feats.scp"}
    assert not [p for p in d.iterdir() if p.name.startswith(".fix_data_dir")]


def test_none_remain_changes_nothing(tmp_path, capsys):
    d = make_dir(tmp_path)
    for utt, _, emo, _ in ROWS:
        edit(d, "utt2emo", f"{utt} {emo}".encode(), f"{utt} xxx".encode())
    before = snapshot(d)
    with pytest.raises(SystemExit) as exc:
        fix_bin.main([str(d), "--emotions", " ".join(EMOS)])
    assert exc.value.code == 1
    assert "no utterance would remain" in capsys.readouterr().err
    assert snapshot(d) == before and not (d / ".backup").exists()


def test_failure_midway_restores_originals(tmp_path, monkeypatch):
    d = make_dir(tmp_path)
    edit(d, "text", b"s1_u1 e f", b"s1_u1")
    before = snapshot(d)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        if Path(dst).parent == d:
            calls.append(dst)
            if len(calls) == 3:
                raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(datadir.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        fix_data_dir(d)
    monkeypatch.setattr(datadir.os, "replace", real_replace)
    assert {k: v for k, v in snapshot(d).items() if not k.startswith(".backup")} == before
    (b,) = backups(d)
    assert snapshot(b) == before


def test_commands_are_never_run(tmp_path, capsys):
    d = make_dir(tmp_path)
    marker = tmp_path / "marker"
    edit(d, "wav.scp", str(tmp_path / "w1.wav").encode(), f"touch {marker} |".encode())
    fix_bin.main([str(d), "--allow_commands", "true"])
    assert "kept 4 of 4" in capsys.readouterr().out
    fix_bin.main([str(d)])
    assert "kept 3 of 4" in capsys.readouterr().out
    assert not marker.exists()


def test_module_entry_point(tmp_path):
    d = make_dir(tmp_path)
    edit(d, "text", b"s1_u1 e f", b"s1_u1")
    r = subprocess.run([sys.executable, "-m", "espnet_ser.bin.fix_data_dir", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "kept 3 of 4 utterances" in r.stdout and "dropped 1: empty transcript" in r.stdout
    assert "dropped s1_u1: empty transcript" in r.stderr
    missing = subprocess.run([sys.executable, "-m", "espnet_ser.bin.fix_data_dir", str(tmp_path / "no")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "not a directory" in missing.stderr
