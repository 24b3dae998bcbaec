"""python -m espnet_ser.bin.validate_data_dir: every bad input names utterance and file."""

import subprocess
import sys

import pytest

from espnet_ser.bin import validate_data_dir as validate_bin
from espnet_ser.data.datadir import DataDirError, validate_data_dir
from tests.data.test_datadir import OPTIONAL, ROWS, drop_line, edit, make_dir


def _missing_from(name):
    return lambda r: (make_dir(r, extra=(name,) if name in OPTIONAL else ()), drop_line)[1](
        r / "data", name, "s0_u2")


BAD_ROWS = {  # id -> rows that contain it
    "slash": ("s0/u9", "s0"), "dotdot": ("s0..u9", "s0"), "ctrl": ("s0_u\x019", "s0"),
    "del": ("s0_u\x7f9", "s0"), "nbsp": ("s0\u00a0u9", "s0"), "vtab": ("s0\x0bu9", "s0"),
    "spk_tab": ("s0_u9", "s\t9"), "spk_slash": ("s0_u9", "s/9"), "spk_dotdot": ("s0_u9", "..")}


def _bad_id(kind):
    utt, spk = BAD_ROWS[kind]
    return lambda r: make_dir(r, rows=ROWS + [(utt, spk, "neu", "x y")])


def _then(fn):
    def mutate(r):
        d = make_dir(r)
        fn(d)
    return mutate


def _personality(change):
    def mutate(r):
        d = make_dir(r, extra=("utt2personality",))
        p = d / "utt2personality"
        lines = p.read_text().splitlines()
        utt, value = lines[1].split(" ", 1)
        lines[1] = f"{utt} {change(value)}"
        p.write_text("\n".join(lines) + "\n")
    return mutate


# (case id, mutation of a fresh tmp root, file named, utterance named, extra CLI args)
CASES = [
    *[(f"missing_from_{n}", _missing_from(n), f"but not in {n}", "s0_u2", [])
      for n in ("wav.scp", "text", "utt2spk", "utt2emo", *OPTIONAL)],
    ("unsorted", _then(lambda d: (d / "utt2emo").write_text(
        "s0_u2 hap\ns0_u0 ang\ns1_u1 neu\ns1_u3 sad\n")), "utt2emo:2", "s0_u0", []),
    ("unsorted_c_order", lambda r: make_dir(r, rows=ROWS + [("S9_u9", "S9", "neu", "x")])
     and [(r / "data" / n).write_text("".join(sorted((r / "data" / n).read_text().splitlines(True),
                                                     key=lambda l: l.lower())))
          for n in ("wav.scp", "text", "utt2spk", "utt2emo", "spk2utt")], "text", "S9_u9", []),
    ("duplicate", _then(lambda d: edit(d, "text", b"s0_u2 c d\n", b"s0_u2 c d\ns0_u2 c d\n")),
     "text:3", "s0_u2", []),
    ("spk2utt_missing_speaker", _then(lambda d: (d / "spk2utt").write_text("s0 s0_u0 s0_u2\n")),
     "spk2utt", "s1_u1", []),
    ("spk2utt_extra_utterance", _then(lambda d: edit(d, "spk2utt", b"s0_u2", b"s0_u2 s0_u9")),
     "spk2utt:1", "s0_u9", []),
    ("spk2utt_wrong_speaker", _then(lambda d: (d / "spk2utt").write_text(
        "s0 s0_u0 s0_u2 s1_u1\ns1 s1_u3\n")), "spk2utt:1", "s1_u1", []),
    ("spk2utt_unsorted_line", _then(lambda d: edit(d, "spk2utt", b"s0_u0 s0_u2", b"s0_u2 s0_u0")),
     "spk2utt:1", "s0_u0", []),
    ("spk2utt_missing_utterance", _then(lambda d: edit(d, "spk2utt", b" s0_u2", b"")),
     "spk2utt:1", "s0_u2", []),
    ("empty_transcript", _then(lambda d: edit(d, "text", b"s1_u1 e f", b"s1_u1")),
     "text:3", "s1_u1", []),
    ("blank_transcript", _then(lambda d: edit(d, "text", b"s1_u1 e f", b"s1_u1   ")),
     "text:3", "s1_u1", []),
    ("no_such_wav", lambda r: (make_dir(r), (r / "w1.wav").unlink()), "wav.scp:2", "s0_u2", []),
    ("no_value", _then(lambda d: edit(d, "utt2emo", b"s0_u2 hap", b"s0_u2")), "utt2emo:2", "s0_u2", []),
    ("leading_space", _then(lambda d: edit(d, "text", b"s0_u2", b"  s0_u2")), "text:2", "s0_u2", []),
    ("crlf", _then(lambda d: edit(d, "utt2spk", b"s0_u2 s0\n", b"s0_u2 s0\r\n")),
     "utt2spk:2", "s0_u2", []),
    ("nbsp_in_value", _then(lambda d: edit(d, "text", b"c d", "c\u00a0d".encode())),
     "text:2", "s0_u2", []),
    ("not_utf8", _then(lambda d: edit(d, "text", b"c d", b"caf\xe9 d")), "text:2", "s0_u2", []),
    ("unknown_emotion", _then(lambda d: edit(d, "utt2emo", b"s0_u2 hap", b"s0_u2 fru")),
     "utt2emo:2", "s0_u2", ["--emotions", "ang hap neu sad"]),
    *[(f"bad_id_{k}", _bad_id(k), "utt2spk", BAD_ROWS[k][0], []) for k in BAD_ROWS],
    ("personality_nine_numbers", _personality(lambda v: v.rsplit(" ", 1)[0]),
     "utt2personality:2", "s0_u2", []),
    ("personality_not_a_number", _personality(lambda v: v.replace("4.5", "x", 1)),
     "utt2personality:2", "s0_u2", []),
]


@pytest.mark.parametrize("case,mutate,fname,utt,extra", CASES, ids=[c[0] for c in CASES])
def test_validate_cli_names_utterance_and_file(tmp_path, capsys, case, mutate, fname, utt, extra):
    mutate(tmp_path)
    d = tmp_path / "data"
    with pytest.raises(SystemExit) as exc:
        validate_bin.main([str(d), *extra])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    shown = utt if utt.isprintable() else repr(utt)
    needle = fname if fname.startswith("but not in") else f"/data/{fname}"
    hits = [l for l in err.splitlines() if needle in l and shown in l]
    assert hits, err


def test_validate_cli_accepts_good_dirs_and_checks_all(tmp_path, capsys):
    good = make_dir(tmp_path)
    validate_bin.main([str(good), "--emotions", "ang hap neu sad"])
    bad_root = tmp_path / "b"
    bad_root.mkdir()
    bad = make_dir(bad_root)
    edit(bad, "utt2emo", b"s0_u2 hap", b"s0_u2 fru")
    r = subprocess.run([sys.executable, "-m", "espnet_ser.bin.validate_data_dir", str(bad), str(good),
                        "--emotions", "ang hap neu sad"], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{bad}/utt2emo:2: utterance s0_u2 has unknown emotion 'fru'" in r.stderr
    assert f"{good}: OK (4 utterances)" in r.stderr


COMMANDS = ["touch {m} |", "sh -c 'touch {m}' |"]


@pytest.mark.parametrize("template", COMMANDS)
def test_wav_scp_commands_are_refused_and_never_run(tmp_path, capsys, template):
    d = make_dir(tmp_path)
    marker = tmp_path / "marker"
    edit(d, "wav.scp", str(tmp_path / "w1.wav").encode(), template.format(m=marker).encode())
    msg = ("wav.scp line 2: utterance s0_u2 is a command (ends with '|'); "
           "commands are not run unless you pass --allow_commands true")
    for check in (False, True):
        with pytest.raises(DataDirError) as exc:
            validate_data_dir(d, check_audio_exists=check)
        assert msg in str(exc.value)
        assert validate_data_dir(d, check_audio_exists=check, allow_commands=True) == 4
    with pytest.raises(SystemExit) as e:
        validate_bin.main([str(d)])
    assert e.value.code == 1 and msg in capsys.readouterr().err
    validate_bin.main([str(d), "--allow_commands", "true"])
    assert not marker.exists()


def test_emotions_option_is_parsed_by_parse_emotions(tmp_path, capsys):
    good = make_dir(tmp_path)
    validate_bin.main([str(good), "--emotions", "ang,hap, neu sad"])
    assert f"{good}: OK (4 utterances)" in capsys.readouterr().err
    for bad in ("ang Hap", "ang ang"):
        with pytest.raises(SystemExit) as e:
            validate_bin.main([str(good), "--emotions", bad])
        assert e.value.code == 2
