"""RAVDESS preparation on small trees with the Audio_Speech_Actors_01-24 layout."""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_ser.bin import prepare_ravdess as prepare_bin
from espnet_ser.data import datadir, ravdess
from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir
from espnet_ser.data.ravdess import (
    EMOTIONS,
    RavdessError,
    RavdessFile,
    Utterance,
    parse_name,
    plan_sets,
    prepare_ravdess,
    random_split,
)

SET_FILES = ["spk2utt", "text", "utt2emo", "utt2gender", "utt2spk", "wav.scp"]
KIDS, DOGS = "kids are talking by the door", "dogs are sitting by the door"


def write_wav(path, fs=48000, n=300):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.sin(np.arange(n) / 5.0).astype(np.float32)
    soundfile.write(str(path), x, fs, subtype="PCM_16")


def tree_names(actor):
    """One file per emotion for an actor: intensity, statement and repetition vary."""
    names = []
    for e in range(1, 9):
        inten = 1 if e == 1 else 1 + (actor + e) % 2
        names.append(f"03-01-{e:02d}-{inten:02d}-{1 + e % 2:02d}-{1 + actor % 2:02d}-{actor:02d}")
    return names


def make_tree(base: Path, actors=range(1, 25)) -> Path:
    """Audio_Speech_Actors_01-24/ with one wav per actor and emotion, plus decoys."""
    root = base / "Audio_Speech_Actors_01-24"
    for a in actors:
        d = root / f"Actor_{a:02d}"
        for stem in tree_names(a):
            write_wav(d / f"{stem}.wav")
        (d / f"._{tree_names(a)[0]}.wav").write_bytes(b"\x00\x05\x16\x07junk")
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text("RAVDESS\n")
    (root / "._x.wav").write_bytes(b"junk")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "Actor_01" / "notes.md").write_text("notes\n")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("work") / "data"
    counts = prepare_ravdess(tree, out, seed=777)
    return out, counts


def full_corpus_utts():
    """Utterances of every valid name of the 1,440-file speech corpus (no files)."""
    utts = []
    for a in range(1, 25):
        for e in range(1, 9):
            for i in ((1,) if e == 1 else (1, 2)):
                for s in (1, 2):
                    for r in (1, 2):
                        stem = f"03-01-{e:02d}-{i:02d}-{s:02d}-{r:02d}-{a:02d}"
                        info = parse_name(stem + ".wav")
                        utts.append(Utterance(ravdess.utt_id(stem, info),
                                              Path(f"/c/Actor_{a:02d}/{stem}.wav"), info))
    return sorted(utts, key=lambda u: u.utt)


def snapshot(d: Path):
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*"))}


# ---------------------------------------------------------------- file names

@pytest.mark.parametrize("name, expected", [
    ("03-01-01-01-01-01-01.wav", RavdessFile(3, 1, "neu", "normal", 1, 1, 1)),
    ("03-01-02-02-02-02-02.wav", RavdessFile(3, 1, "cal", "strong", 2, 2, 2)),
    ("03-01-03-01-02-01-11.wav", RavdessFile(3, 1, "hap", "normal", 2, 1, 11)),
    ("03-01-04-02-01-02-12.wav", RavdessFile(3, 1, "sad", "strong", 1, 2, 12)),
    ("03-01-05-02-01-01-07.wav", RavdessFile(3, 1, "ang", "strong", 1, 1, 7)),
    ("03-01-06-01-02-02-18.wav", RavdessFile(3, 1, "fea", "normal", 2, 2, 18)),
    ("03-01-07-02-01-01-23.wav", RavdessFile(3, 1, "dis", "strong", 1, 1, 23)),
    ("03-01-08-01-01-02-24.wav", RavdessFile(3, 1, "sur", "normal", 1, 2, 24)),
    ("03-01-08-01-01-02-24.WAV", RavdessFile(3, 1, "sur", "normal", 1, 2, 24)),
])
def test_parse_name(name, expected):
    info = parse_name(name)
    assert info == expected
    assert info.speaker == f"actor{expected.actor:02d}"
    assert info.gender == ("m" if expected.actor % 2 else "f")
    assert info.text == (KIDS if expected.statement == 1 else DOGS)


@pytest.mark.parametrize("name, message", [
    ("03-01-05-01-01-01-1.wav", "does not follow MM-VV-EE-II-SS-RR-AA.wav"),
    ("03-01-05-01-01-01.wav", "does not follow"),
    ("03_01_05_01_01_01_01.wav", "does not follow"),
    ("00-01-05-01-01-01-01.wav", "modality code 00 is out of range (01 .. 03)"),
    ("04-01-05-01-01-01-01.wav", "modality code 04 is out of range"),
    ("03-03-05-01-01-01-01.wav", "vocal channel code 03 is out of range (01 .. 02)"),
    ("03-01-09-01-01-01-01.wav", "emotion code 09 is out of range (01 .. 08)"),
    ("03-01-00-01-01-01-01.wav", "emotion code 00 is out of range"),
    ("03-01-05-03-01-01-01.wav", "intensity code 03 is out of range (01 .. 02)"),
    ("03-01-05-01-03-01-01.wav", "statement code 03 is out of range (01 .. 02)"),
    ("03-01-05-01-01-03-01.wav", "repetition code 03 is out of range (01 .. 02)"),
    ("03-01-05-01-01-01-25.wav", "actor code 25 is out of range (01 .. 24)"),
    ("01-01-05-01-01-01-01.wav", "modality 01, vocal channel 01; only audio-only speech"),
    ("03-02-05-01-01-01-01.wav", "modality 03, vocal channel 02; only audio-only speech"),
    ("03-01-01-02-01-01-01.wav", "neutral (01) has no strong intensity (02)"),
])
def test_parse_name_errors(name, message):
    with pytest.raises(RavdessError) as e:
        parse_name(name)
    assert message in str(e.value)
    assert repr(name) in str(e.value)


# ---------------------------------------------------------------- data directories

def test_sets_and_files(prepared, tree):
    out, counts = prepared
    assert sorted(p.name for p in out.iterdir()) == sorted(ravdess.SET_NAMES)
    for name in ravdess.SET_NAMES:
        assert sorted(p.name for p in (out / name).iterdir()) == SET_FILES
        assert validate_data_dir(out / name, emotions=EMOTIONS, check_audio_exists=True) \
            == counts["sets"][name]["num_utts"]
    assert counts["num_utts"] == 24 * 8
    d = out / "ravdess_all"
    wav, text = read_kaldi_map(d / "wav.scp"), read_kaldi_map(d / "text")
    spk, emo = read_kaldi_map(d / "utt2spk"), read_kaldi_map(d / "utt2emo")
    gender = read_kaldi_map(d / "utt2gender")
    assert len(wav) == 192
    utt = "actor07-03-01-05-01-02-02-07"
    assert wav[utt] == str(tree / "Actor_07" / "03-01-05-01-02-02-07.wav")
    assert Path(wav[utt]).is_absolute()
    assert (text[utt], spk[utt], emo[utt], gender[utt]) == (DOGS, "actor07", "ang", "m")
    utt = "actor12-03-01-02-01-01-01-12"
    assert (text[utt], spk[utt], emo[utt], gender[utt]) == (KIDS, "actor12", "cal", "f")
    for u in wav:
        a = int(u[5:7])
        assert u == f"actor{a:02d}-" + Path(wav[u]).stem
        assert spk[u] == f"actor{a:02d}"
        assert gender[u] == "mf"[a % 2 == 0]
        assert emo[u] == EMOTIONS[int(u.split("-")[3]) - 1]
    assert Counter(emo.values()) == {e: 24 for e in EMOTIONS}
    spk2utt = read_kaldi_map(d / "spk2utt")
    assert list(spk2utt) == [f"actor{a:02d}" for a in range(1, 25)]
    assert not any("._" in w or "README" in w for w in wav.values())


def test_random_split_is_stratified(prepared):
    out, counts = prepared
    train = read_kaldi_map(out / "random_train" / "utt2emo")
    test = read_kaldi_map(out / "random_test" / "utt2emo")
    assert not set(train) & set(test)
    assert sorted(set(train) | set(test)) == sorted(read_kaldi_map(out / "ravdess_all" / "utt2emo"))
    # 24 per emotion, 192 files: scikit-learn holds out ceil(0.2 * 192) = 39, 4.8 per
    # emotion: 4 each, and 7 of the 8 emotions get a fifth
    per = Counter(test.values())
    assert len(test) == 39 and sorted(per.values()) == [4] + [5] * 7
    assert {e: per[e] + n for e, n in Counter(train.values()).items()} == {e: 24 for e in EMOTIONS}
    assert counts["sets"]["random_test"]["per_emotion"] == {e: per[e] for e in EMOTIONS}


def test_random_split_seed(prepared, tree, tmp_path):
    out, _ = prepared
    test777 = read_kaldi_map(out / "random_test" / "utt2emo")
    prepare_ravdess(tree, tmp_path / "same", seed=777)
    prepare_ravdess(tree, tmp_path / "other", seed=778)
    for name in ravdess.SET_NAMES:
        for f in SET_FILES:
            assert (tmp_path / "same" / name / f).read_bytes() == (out / name / f).read_bytes()
    other = read_kaldi_map(tmp_path / "other" / "random_test" / "utt2emo")
    assert set(other) != set(test777)
    assert len(other) == 39 and sorted(Counter(other.values()).values()) == [4] + [5] * 7


def test_random_split_rule():
    from sklearn.model_selection import train_test_split

    utts = full_corpus_utts()
    assert len(utts) == ravdess.EXPECTED_FILES
    assert Counter(u.info.emotion for u in utts) == {"neu": 96, **{e: 192 for e in EMOTIONS[1:]}}
    train, test = random_split(utts)  # the default seed and fraction 0.2
    per = Counter(u.info.emotion for u in test)
    # the paper's 1,152 / 288, with calm, fearful and surprised 39 test files each
    assert (len(train), len(test)) == (1152, 288)
    assert per == {"neu": 19, "cal": 39, "fea": 39, "sur": 39, "hap": 38, "sad": 38,
                   "ang": 38, "dis": 38}
    # exactly scikit-learn's split of the Kaldi-sorted files, each part in that order
    ordered = sorted(utts, key=lambda u: u.utt)
    kept, held = train_test_split(ordered, test_size=0.2, random_state=ravdess.DEFAULT_SEED,
                                  stratify=[u.info.emotion for u in ordered])
    assert test == sorted(held, key=lambda u: u.utt) and train == sorted(kept, key=lambda u: u.utt)
    # independent of input order; another seed, another draw of the same sizes
    assert random_split(utts[::-1]) == (train, test)
    other = random_split(utts, seed=777)[1]
    assert len(other) == 288 and {u.utt for u in other} != {u.utt for u in test}
    few = [u for u in utts if u.info.actor == 1 and u.info.emotion in ("neu", "ang")][:9]
    _, t = random_split(few, 1, 0.5)
    assert len(t) == 5 and set(Counter(u.info.emotion for u in t).values()) <= {2, 3}


def test_random_split_class_too_small():
    actor1 = [u for u in full_corpus_utts() if u.info.actor == 1]
    utts = [u for u in actor1 if u.info.emotion != "hap"] + \
        [u for u in actor1 if u.info.emotion == "hap"][:1]
    assert Counter(u.info.emotion for u in utts)["hap"] == 1
    with pytest.raises(RavdessError, match=r"RAVDESS random split: cannot stratify: class "
                                           r"'hap' has only 1 item"):
        random_split(utts)


def test_actor_split(prepared):
    out, counts = prepared
    expect = {"actor_train": range(1, 19), "actor_valid": (19, 20), "actor_test": range(21, 25)}
    for name, actors in expect.items():
        spk2utt = read_kaldi_map(out / name / "spk2utt")
        assert list(spk2utt) == [f"actor{a:02d}" for a in actors]
        assert counts["sets"][name]["num_utts"] == 8 * len(actors)
    plan = plan_sets(full_corpus_utts())
    assert [len(plan[n]) for n in ("actor_train", "actor_valid", "actor_test")] == [1080, 120, 240]


def test_counts_logged(tree, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        prepare_ravdess(tree, tmp_path / "data")
    text = caplog.text
    assert f"skipping {tree / 'README.txt'} (not a .wav file)" in text
    assert f"skipping {tree / 'Actor_01' / 'notes.md'} (not a .wav file)" in text
    assert "found 192 speech files; the full corpus has 1440" in text
    assert f"{tmp_path / 'data' / 'random_test'}: 39 utterances, " in text
    assert f"{tmp_path / 'data' / 'actor_valid'}: 16 utterances, 2 speakers" in text


# ---------------------------------------------------------------- errors

BAD_FILES = [
    ("Actor_01/03-01-05-01-01-01-1.wav", "does not follow MM-VV-EE-II-SS-RR-AA.wav"),
    ("Actor_01/take1.wav", "does not follow"),
    ("Actor_01/03-01-09-01-01-01-01.wav", "emotion code 09 is out of range"),
    ("Actor_01/03-01-05-01-01-01-00.wav", "actor code 00 is out of range"),
    ("Actor_01/03-01-05-01-01-01-02.wav", "actor code 02 disagrees with its folder Actor_01"),
    ("Actor_01/01-01-05-01-01-01-01.wav", "only audio-only speech"),
    ("Actor_01/03-02-05-01-01-01-01.wav", "only audio-only speech"),
    ("Actor_01/03-01-01-02-01-01-01.wav", "neutral (01) has no strong intensity"),
    ("03-01-05-01-01-01-01.wav", "not inside an Actor_XX folder"),
    ("Extra/03-01-05-01-01-01-01.wav", "not inside an Actor_XX folder"),
    ("Actor_25/03-01-05-01-01-01-25.wav", "not inside an Actor_XX folder"),
]


@pytest.mark.parametrize("rel, message", BAD_FILES)
def test_bad_file_fails_naming_it(tmp_path, rel, message):
    root = make_tree(tmp_path / "corpus", actors=range(1, 25, 6))
    write_wav(root / rel)
    work = tmp_path / "work"
    (work / "data" / "ravdess_all").mkdir(parents=True)
    (work / "data" / "ravdess_all" / "old").write_text("old\n")
    (work / "data" / "notes.txt").write_text("keep me\n")
    before = snapshot(work)
    with pytest.raises(RavdessError) as e:
        prepare_ravdess(root, work / "data")
    assert str(e.value).startswith(f"{root / rel}: ")
    assert message in str(e.value)
    assert snapshot(work) == before
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--ravdess_root", str(root), "--out_dir", str(tmp_path / "d2")])
    assert e.value.code.startswith(f"ERROR: {root / rel}: ")
    assert not (tmp_path / "d2").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "work"]


def test_root_errors(tmp_path):
    with pytest.raises(RavdessError, match="--ravdess_root .*nope: no such directory"):
        prepare_ravdess(tmp_path / "nope", tmp_path / "data")
    base = tmp_path / "download"
    root = make_tree(base, actors=[1])
    with pytest.raises(RavdessError) as e:
        prepare_ravdess(base, tmp_path / "data")
    assert str(e.value) == (f"--ravdess_root {base} has no Actor_XX folder but contains "
                            f"Audio_Speech_Actors_01-24; did you mean --ravdess_root {root}?")
    empty = tmp_path / "empty"
    (empty / "Actor_01").mkdir(parents=True)
    (empty / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"junk")
    (empty / "README.txt").write_text("x\n")
    with pytest.raises(RavdessError, match=r"--ravdess_root .*empty: no \.wav files"):
        prepare_ravdess(empty, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_split_errors(tmp_path):
    few = make_tree(tmp_path / "few", actors=range(1, 19))
    with pytest.raises(RavdessError, match=r"no utterance for actor_valid \(actors 19-20\)"):
        prepare_ravdess(few, tmp_path / "data")
    for frac in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(RavdessError, match="--test_fraction must be between 0 and 1"):
            prepare_ravdess(few, tmp_path / "data", test_fraction=frac)
    with pytest.raises(RavdessError, match="--seed must be a non-negative integer"):
        prepare_ravdess(few, tmp_path / "data", seed=-1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few"]


def test_check_audio(tmp_path):
    root = make_tree(tmp_path / "corpus", actors=range(1, 25, 2))
    prepare_ravdess(root, tmp_path / "ok", check_audio=True)
    bad = root / "Actor_05" / "03-01-02-01-01-01-05.wav"
    write_wav(bad, fs=16000)
    prepare_ravdess(root, tmp_path / "unchecked")
    with pytest.raises(RavdessError, match=f"{bad}: 16000 Hz; expected 48000 Hz"):
        prepare_ravdess(root, tmp_path / "data", check_audio=True)
    assert not (tmp_path / "data").exists()


def test_failed_install_restores(tree, tmp_path, monkeypatch):
    out = tmp_path / "work" / "data"
    prepare_ravdess(tree, out, seed=1)
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(tmp_path / "work")
    real = datadir._move
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(datadir, "_move", flaky)
    with pytest.raises(OSError, match="disk full"):
        prepare_ravdess(tree, out, seed=2)
    assert snapshot(tmp_path / "work") == before
    monkeypatch.setattr(datadir, "_move", real)
    prepare_ravdess(tree, out, seed=2)
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert snapshot(tmp_path / "work") != before
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["data"]
