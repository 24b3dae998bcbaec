"""IEMOCAP preparation on small trees with the IEMOCAP_full_release layout."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_ser.bin import prepare_iemocap as prepare_bin
from espnet_ser.data import datadir, iemocap
from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir
from espnet_ser.data.iemocap import (
    IemocapError,
    normalize_transcript,
    prepare_iemocap,
    read_consensus,
    read_transcripts,
    speaker_of,
)

EMOS = ["ang", "hap", "neu", "sad"]
SET_FILES = ["spk2utt", "text", "utt2dim", "utt2emo", "utt2spk", "wav.scp"]
# Ses02M_script01_1_M002 (neu) says "[LAUGHTER] [GARBAGE]": no words, a valid emotion sample.
NO_WORDS = "Ses02M-Ses02M_script01_1_M002"
# Label of Ses0<n>M_script01_1_F002, dropped in every session.
OTHER_LABEL = {1: "sur", 2: "fea", 3: "dis", 4: "oth", 5: "xxx"}
APPLEDOUBLE = (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\n"
               b"[\xff\xfe\x00junk\n\x00\x00")
VAD = {"neu": (2.5, 2.5, 2.5), "exc": (4.0, 3.5, 3.0), "ang": (1.5, 4.0, 4.5),
       "sad": (1.5, 2.0, 2.0), "hap": (4.5, 3.5, 3.0), "fru": (2.0, 3.5, 3.5),
       "xxx": (2.0, 2.0, 2.5), "sur": (3.5, 4.0, 3.0), "fea": (2.0, 4.0, 1.5),
       "dis": (1.5, 3.0, 3.5), "oth": (3.0, 3.0, 3.0)}


def dialogs(n):
    """``{dialog: [(suffix, label, raw transcript), ...]}`` of session n."""
    impro, script = f"Ses0{n}F_impro01", f"Ses0{n}M_script01_1"
    out = {
        impro: [
            ("F000", "neu", f"Excuse me, number {n}."),
            ("M000", "exc", f"[LAUGHTER] Oh, that's GREAT -- really great! take {n}"),
            ("F001", "ang", f"I don't care; 'hello' he said. take {n}"),
            ("M001", "sad", f"A well-known [BREATHING] story... <sigh> 42 times take {n}"),
            ("F002", "fru", "Ugh, whatever."),
            ("M002", "xxx", "What?"),
        ],
        script: [
            ("F000", "hap", f"Yes [BREATHING] yes. take {n}"),
            ("M000", "neu", f'"Okay," she said [GARBAGE]: fine? take {n}'),
            ("F001", "sad", f"I'm goin' home. take {n}"),
            ("M001", "ang", f"U.S.A. & 50% {{noise}} take {n}"),
            ("F002", OTHER_LABEL[n], "Really?"),
        ],
    }
    if n == 2:
        out[script].append(("M002", "neu", "[LAUGHTER] [GARBAGE]"))
    return out


def write_wav(path, fs=16000, channels=1, n=320):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.sin(np.arange(n) / 5.0).astype(np.float32)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    soundfile.write(str(path), x, fs, subtype="PCM_16")


def consensus_line(start, utt, label, vad):
    v, a, d = vad
    return f"[{start:.4f} - {start + 1.5:.4f}]\t{utt}\t{label}\t[{v:.4f}, {a:.4f}, {d:.4f}]\n"


def make_tree(base: Path) -> Path:
    """IEMOCAP_full_release/ with 5 sessions x 2 dialogs, decoys and ._* junk."""
    root = base / "IEMOCAP_full_release"
    for n in range(1, 6):
        sess = root / f"Session{n}"
        emo = sess / "dialog" / "EmoEvaluation"
        trn = sess / "dialog" / "transcriptions"
        for d in (emo / "Categorical", emo / "Attribute", emo / "Self-evaluation", trn):
            d.mkdir(parents=True)
        for dialog, utts in dialogs(n).items():
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n", "\n"]
            tlines = []
            for i, (suffix, label, text) in enumerate(utts):
                utt = f"{dialog}_{suffix}"
                start = 6.2901 + 3 * i
                lines += [
                    consensus_line(start, utt, label, VAD[label]),
                    "C-E2:\tNeutral;\t()\n",
                    "C-E3:\tFrustration; Anger;\t(a comment [with brackets])\n",
                    "A-E3:\tval 3; act 2; dom  2;\t()\n",
                    "A-F1:\tval 3; act 3; dom  3;\t()\n",
                    "\n",
                ]
                tlines.append(f"{utt} [{start:08.4f}-{start + 1.5:08.4f}]: {text}\n")
                if label != "xxx":  # dropped utterances need no wav
                    write_wav(sess / "sentences" / "wav" / dialog / f"{utt}.wav")
            tlines[1:1] = [
                "M: [BREATHING]\n",
                f"{dialog}_MXX0 [010.0000-011.0000]: overlapping words\n",
                f"{dialog}_MXX0 [012.0000-013.0000]: another overlap\n",
                f"{dialog}_F009: no time stamp here\n",
                "\n",
            ]
            (emo / f"{dialog}.txt").write_text("".join(lines))
            (trn / f"{dialog}.txt").write_text("".join(tlines))
            # Decoys: they would parse as consensus lines (or fail) if read.
            decoy = consensus_line(6.2901, f"{dialog}_F000", "sad", (1, 1, 1))
            (emo / "Categorical" / f"{dialog}.txt").write_text(decoy)
            (emo / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
                consensus_line(1.0, f"{dialog}_F777", "zzz", (1, 1, 1)))
            (emo / "Attribute" / f"{dialog}_e1_atr.txt").write_text(decoy)
            (emo / "Self-evaluation" / f"{dialog}.txt").write_text("[garbage line\n")
            (emo / f"._{dialog}.txt").write_bytes(APPLEDOUBLE)
            (trn / f"._{dialog}.txt").write_bytes(APPLEDOUBLE)
            (sess / "sentences" / "wav" / dialog / f"._{dialog}_F000.wav").write_bytes(APPLEDOUBLE)
        (emo / ".DS_Store").write_bytes(APPLEDOUBLE)
    return root


def kept_ids(n, no_words=False):
    """Kaldi ids of the kept utterances of session n (with words; ``no_words``: all)."""
    s = f"Ses0{n}"
    extra = {NO_WORDS} if no_words and n == 2 else set()
    return extra | {
        f"{s}F-{s}F_impro01_F000", f"{s}M-{s}F_impro01_M000",
        f"{s}F-{s}F_impro01_F001", f"{s}M-{s}F_impro01_M001",
        f"{s}F-{s}M_script01_1_F000", f"{s}M-{s}M_script01_1_M000",
        f"{s}F-{s}M_script01_1_F001", f"{s}M-{s}M_script01_1_M001",
    }


def snapshot(d: Path):
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*"))}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "data"
    counts = prepare_iemocap(tree, out)
    return out, counts


def read_set(out, name):
    return {f: read_kaldi_map(out / name / f) for f in SET_FILES}


# ---------------------------------------------------------------- small functions

@pytest.mark.parametrize("raw, expected", [
    ("Excuse me.", "excuse me"),
    ("[LAUGHTER] Oh, that's GREAT -- really great!", "oh that's great really great"),
    ("I don't care; 'hello' he said.", "i don't care hello he said"),
    ("A well-known [BREATHING] story... <sigh> 42 times", "a well known story 42 times"),
    ("I'm goin' home.", "i'm goin home"),
    ('"Okay," she said [GARBAGE]: fine?', "okay she said fine"),
    ("U.S.A. & 50% {noise}", "u s a 50"),
    ("It\u2019s [LIPSMACK]ok[NOISE]ay", "it's ok ay"),
    ("rock''n'roll", "rock'n'roll"),
    ("snake_case  tabs\there", "snake case tabs here"),
    ("[LAUGHTER] [GARBAGE]", ""),
    ("[BREATHING", "breathing"),
    ("  ...  ", ""),
])
def test_normalize_transcript(raw, expected):
    assert normalize_transcript(raw) == expected


def test_speaker_of():
    assert speaker_of("Ses01F_impro01_M013") == "Ses01M"
    assert speaker_of("Ses01F_impro01_F000") == "Ses01F"
    assert speaker_of("Ses05M_script02_2_F016") == "Ses05F"
    assert iemocap.kaldi_utt_id("Ses01F_impro01_M013") == "Ses01M-Ses01F_impro01_M013"
    for bad in ("Ses01F_impro01", "foo", "Ses01F_impro01_X000"):
        with pytest.raises(IemocapError, match="not an IEMOCAP utterance id"):
            speaker_of(bad)


def test_read_consensus(tree):
    path = tree / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    got = read_consensus(path)
    assert [(c.utt, c.label, c.vad) for c in got][:2] == [
        ("Ses01F_impro01_F000", "neu", (2.5, 2.5, 2.5)),
        ("Ses01F_impro01_M000", "exc", (4.0, 3.5, 3.0)),
    ]
    assert [c.lineno for c in got] == [3, 9, 15, 21, 27, 33]
    assert len(got) == 6 and got[-1].label == "xxx"


def test_read_transcripts(tree):
    path = tree / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    got = read_transcripts(path, keep={"Ses01F_impro01_F000"})
    assert got["Ses01F_impro01_F000"] == "Excuse me, number 1."
    assert got["Ses01F_impro01_MXX0"] == "overlapping words"  # the first of two
    assert "Ses01F_impro01_F009" not in got and "M:" not in got
    with pytest.raises(IemocapError, match=r"Ses01F_impro01.txt:4: second transcript for "
                                           r"Ses01F_impro01_MXX0 differs from the one on line 3"):
        read_transcripts(path)


def test_fold_sessions():
    assert iemocap.fold_sessions(1) == {"train": [3, 4, 5], "valid": [2], "test": [1]}
    assert iemocap.fold_sessions(5) == {"train": [2, 3, 4], "valid": [1], "test": [5]}


# ---------------------------------------------------------------- full preparation

def test_counts(prepared):
    _, counts = prepared
    assert counts["num_utts"] == 41
    assert counts["kept_per_label"] == {"ang": 10, "hap": 10, "neu": 11, "sad": 10}
    assert counts["merged_exc_into_hap"] == 5
    assert counts["dropped_per_label"] == {"dis": 1, "fea": 1, "fru": 5, "oth": 1,
                                           "sur": 1, "xxx": 6}
    assert counts["empty_text"] == 1
    assert counts["consensus_lines"] == 56
    assert counts["kept_per_session"]["Session2"] == {"ang": 2, "hap": 2, "neu": 3, "sad": 2}
    # the joint ASR + SER folds leave the utterance with no words out, the SER folds keep it
    assert counts["protocols"] == {"session": 40, "loso_partner": 41, "loso_random": 41,
                                   "loso_none": 41}
    assert counts["sets"]["fold3_train"]["num_utts"] == 24
    assert counts["sets"]["fold3_train"]["num_speakers"] == 6
    assert counts["sets"]["fold1_valid"]["num_utts"] == 8
    assert counts["sets"]["loso1_train"]["num_utts"] == 33
    assert counts["sets"]["loso1_train"]["num_speakers"] == 8
    assert counts["sets"]["losonv1_train"]["num_utts"] == 37
    assert counts["sets"]["losonv1_train"]["num_speakers"] == 9
    assert counts["sets"]["loso7_test"] == {"num_utts": 4, "num_speakers": 1, "per_emotion":
                                            {"ang": 1, "hap": 1, "neu": 1, "sad": 1}}


def test_written_sets_and_folds(prepared):
    out, _ = prepared
    names = ["iemocap_all"] + [f"fold{k}_{s}" for k in range(1, 6)
                               for s in ("train", "valid", "test")]
    loso = [f"{p}{k}_{s}" for p in ("loso", "losorv") for k in range(1, 11)
            for s in ("train", "valid", "test")]
    loso += [f"losonv{k}_{s}" for k in range(1, 11) for s in ("train", "test")]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + loso)
    everything = set().union(*(kept_ids(n) for n in range(1, 6)))
    for name in names:
        extra = [datadir.EMPTY_TEXT_FILE] if name == "iemocap_all" else []
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(SET_FILES + extra)
        assert validate_data_dir(out / name, emotions=EMOS, check_audio_exists=True) > 0
    assert set(read_kaldi_map(out / "iemocap_all" / "utt2emo")) == everything | {NO_WORDS}
    for k in range(1, 6):
        sets = {s: set(read_kaldi_map(out / f"fold{k}_{s}" / "utt2emo"))
                for s in ("train", "valid", "test")}
        valid = k % 5 + 1
        assert sets["test"] == kept_ids(k)
        assert sets["valid"] == kept_ids(valid)
        assert sets["train"] == set().union(*(kept_ids(n) for n in range(1, 6)
                                              if n not in (k, valid)))
        assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"]
                    or sets["valid"] & sets["test"])
        assert sets["train"] | sets["valid"] | sets["test"] == everything
    assert read_kaldi_map(out / "fold1_test" / "spk2utt").keys() == {"Ses01F", "Ses01M"}
    assert set(read_kaldi_map(out / "fold4_valid" / "utt2spk").values()) == {"Ses05F", "Ses05M"}


def test_files_are_sorted_bytewise(prepared):
    out, _ = prepared
    for name in ("iemocap_all", "fold2_train", "loso3_train", "loso4_valid", "loso10_test"):
        for f in SET_FILES:
            keys = [line.split(b" ")[0] for line in (out / name / f).read_bytes().splitlines()]
            assert keys == sorted(keys) and len(keys) == len(set(keys))
    lines = (out / "iemocap_all" / "utt2spk").read_text().splitlines()
    spks = [line.split()[1] for line in lines]
    assert spks == sorted(spks)  # speakers contiguous, as Kaldi requires


def test_labels_text_speakers_wavs_dims(prepared, tree):
    out, _ = prepared
    d = read_set(out, "iemocap_all")
    u = "Ses03M-Ses03F_impro01_M000"
    assert d["utt2emo"][u] == "hap"  # exc merged
    assert d["utt2emo"]["Ses03F-Ses03M_script01_1_F000"] == "hap"
    assert d["utt2emo"]["Ses04M-Ses04M_script01_1_M001"] == "ang"
    # arousal valence dominance (the corpus line lists valence activation dominance)
    assert d["utt2dim"][u] == "3.5000 4.0000 3.0000"
    assert d["utt2dim"]["Ses01F-Ses01F_impro01_F001"] == "4.0000 1.5000 4.5000"
    assert d["utt2spk"][u] == "Ses03M"
    assert d["utt2spk"]["Ses03F-Ses03M_script01_1_F000"] == "Ses03F"
    assert d["text"] == {**d["text"], **{
        "Ses01F-Ses01F_impro01_F000": "excuse me number 1",
        u: "oh that's great really great take 3",
        "Ses02F-Ses02F_impro01_F001": "i don't care hello he said take 2",
        "Ses05M-Ses05F_impro01_M001": "a well known story 42 times take 5",
        "Ses04M-Ses04M_script01_1_M000": "okay she said fine take 4",
        "Ses04F-Ses04M_script01_1_F001": "i'm goin home take 4",
        "Ses01M-Ses01M_script01_1_M001": "u s a 50 take 1",
    }}
    wav = d["wav.scp"][u]
    assert os.path.isabs(wav)
    assert Path(wav) == tree / "Session3" / "sentences" / "wav" / "Ses03F_impro01" / \
        "Ses03F_impro01_M000.wav"
    # Dropped: other labels. Kept with an empty transcript, and listed as such: the
    # utterance with no words.
    assert [k for k in d["utt2emo"] if k.endswith(("_F002", "_M002"))] == [NO_WORDS]
    assert d["text"][NO_WORDS] == "" and d["utt2emo"][NO_WORDS] == "neu"
    assert read_kaldi_map(out / "iemocap_all" / datadir.EMPTY_TEXT_FILE) == {
        NO_WORDS: "[LAUGHTER] [GARBAGE]"}


def test_decoys_and_junk_never_read(tree, tmp_path, monkeypatch):
    opened = []
    real = Path.read_bytes

    def spy(self):
        opened.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    iemocap.collect_utterances(tree, EMOS)
    names = {p.relative_to(tree).as_posix() for p in opened}
    expected = {f"Session{n}/dialog/{sub}/{dialog}.txt" for n in range(1, 6)
                for dialog in dialogs(n) for sub in ("EmoEvaluation", "transcriptions")}
    assert names == expected


def test_counts_are_logged(tree, tmp_path, caplog):
    caplog.set_level("DEBUG")
    prepare_iemocap(tree, tmp_path / "data")
    log = caplog.text
    assert "Session2: kept 9 (ang 2, hap 2, neu 3, sad 2)" in log
    assert "kept 41 utterances: ang 10, hap 10, neu 11, sad 10" in log
    assert "exc merged into hap: 5" in log
    assert "dropped by label: dis 1, fea 1, fru 5, oth 1, sur 1, xxx 6" in log
    assert "with no words in the transcript: 1 (kept for utterance-level SER" in log
    assert ("session protocol (joint ASR + SER): 40 utterances in the 5 test folds (1 with no "
            "words in the transcript left out)") in log
    assert ("--loso_valid none (losonv*_; train = the 9 other speakers, no validation set): "
            "41 utterances in the 10 test folds") in log
    assert ("the 4-class set (ang hap+exc neu sad) holds 41 utterances, 5490 fewer than the "
            "5531 of the full release (-5490)") in log
    assert "Ses02M_script01_1_M002" in log  # the ids, at debug level
    assert "fold1_test: 8 utterances, 2 speakers (ang 2, hap 2, neu 2, sad 2)" in log


def test_no_merge_keeps_exc(tree, tmp_path):
    counts = prepare_iemocap(tree, tmp_path / "data", emotions=["ang", "exc", "hap", "neu", "sad"],
                             merge_exc=False)
    assert counts["kept_per_label"] == {"ang": 10, "exc": 5, "hap": 5, "neu": 11, "sad": 10}
    emo = read_kaldi_map(tmp_path / "data" / "iemocap_all" / "utt2emo")
    assert emo["Ses03M-Ses03F_impro01_M000"] == "exc"
    counts = prepare_iemocap(tree, tmp_path / "d2", merge_exc=False)
    assert counts["kept_per_label"]["hap"] == 5 and counts["dropped_per_label"]["exc"] == 5


@pytest.mark.parametrize("emotions, merge, msg", [
    (["ang", "exc", "hap"], True, "contains exc but --merge_exc_into_hap is true"),
    (["ang", "joy"], True, "unknown label 'joy'"),
    (["ang", "ang"], True, "twice"),
    ([], True, "empty"),
])
def test_bad_emotions(tree, tmp_path, emotions, merge, msg):
    with pytest.raises(IemocapError, match=msg):
        prepare_iemocap(tree, tmp_path / "data", emotions=emotions, merge_exc=merge)
    assert not (tmp_path / "data").exists()


def test_check_audio(tmp_path):
    root = make_tree(tmp_path)
    assert prepare_iemocap(root, tmp_path / "ok", check_audio=True)["num_utts"] == 41
    wav = root / "Session4" / "sentences" / "wav" / "Ses04F_impro01" / "Ses04F_impro01_F001.wav"
    write_wav(wav, fs=8000)
    prepare_iemocap(root, tmp_path / "unchecked")  # headers are not read by default
    with pytest.raises(IemocapError,
                       match=rf"{wav}: 8000 Hz, 1 channel\(s\); expected 16000 Hz mono"):
        prepare_iemocap(root, tmp_path / "data", check_audio=True)
    write_wav(wav, channels=2)
    with pytest.raises(IemocapError, match=rf"{wav}: 16000 Hz, 2 channel"):
        prepare_iemocap(root, tmp_path / "data", check_audio=True)
    wav.write_bytes(b"not audio")
    with pytest.raises(IemocapError, match=rf"{wav}: cannot read audio header"):
        prepare_iemocap(root, tmp_path / "data", check_audio=True)
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- leave one speaker out

SPEAKER_ORDER = ["Ses01F", "Ses01M", "Ses02F", "Ses02M", "Ses03F", "Ses03M", "Ses04F",
                 "Ses04M", "Ses05F", "Ses05M"]
SPLITS = ("train", "valid", "test")


def speaker_ids(spk):
    """Kaldi ids of the kept utterances of speaker ``Ses0<n><g>``."""
    return {u for u in kept_ids(int(spk[4]), no_words=True) if u.startswith(spk + "-")}


def loso_sets(out, k, prefix="loso", splits=None):
    return {s: read_kaldi_map(out / f"{prefix}{k}_{s}" / "utt2spk") for s in splits or SPLITS}


def set_files(d):
    """The files a set must have: SET_FILES, plus the no-words listing where it holds one."""
    has = NO_WORDS in read_kaldi_map(d / "utt2spk")
    return sorted(SET_FILES + ([datadir.EMPTY_TEXT_FILE] if has else []))


def test_loso_speakers_and_partner():
    assert iemocap.SPEAKERS == tuple(SPEAKER_ORDER)
    assert iemocap.partner_of("Ses01F") == "Ses01M" and iemocap.partner_of("Ses05M") == "Ses05F"
    with pytest.raises(IemocapError, match="'Ses06F' is not an IEMOCAP speaker"):
        iemocap.partner_of("Ses06F")
    assert iemocap.loso_speakers(1) == {
        "train": ["Ses02F", "Ses02M", "Ses03F", "Ses03M", "Ses04F", "Ses04M", "Ses05F",
                  "Ses05M"],
        "valid": ["Ses01M"], "test": ["Ses01F"]}
    assert iemocap.loso_speakers(6)["test"] == ["Ses03M"]
    assert iemocap.loso_speakers(6)["valid"] == ["Ses03F"]
    with pytest.raises(IemocapError, match="LOSO fold 11"):
        iemocap.loso_speakers(11)
    assert iemocap.set_names(["loso"], ["partner"]) == ["iemocap_all"] + [
        f"loso{k}_{s}" for k in range(1, 11) for s in SPLITS]
    assert iemocap.set_names(["loso"], "none") == ["iemocap_all"] + [
        f"losonv{k}_{s}" for k in range(1, 11) for s in ("train", "test")]
    assert iemocap.set_names(["loso"]) == iemocap.set_names(["loso"], ["partner"]) + [
        f"losorv{k}_{s}" for k in range(1, 11) for s in SPLITS] + \
        iemocap.set_names(["loso"], ["none"])[1:]
    assert iemocap.set_names()[:16] == iemocap.set_names(["session"])


def test_loso_partner_folds(prepared):
    out, _ = prepared
    everything = set(read_kaldi_map(out / "iemocap_all" / "utt2emo"))
    all_emo = read_kaldi_map(out / "iemocap_all" / "utt2emo")
    all_dim = read_kaldi_map(out / "iemocap_all" / "utt2dim")
    for k, spk in enumerate(SPEAKER_ORDER, 1):
        sets = loso_sets(out, k)
        partner = spk[:-1] + ("M" if spk.endswith("F") else "F")
        # test = exactly speaker k, valid = its session partner, train = the other 8.
        assert set(sets["test"].values()) == {spk}
        assert set(sets["test"]) == speaker_ids(spk)
        assert set(sets["valid"].values()) == {partner}
        assert set(sets["valid"]) == speaker_ids(partner)
        assert set(sets["train"].values()) == set(SPEAKER_ORDER) - {spk, partner}
        keys = [set(sets[s]) for s in SPLITS]
        assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
        assert keys[0] | keys[1] | keys[2] == everything
        # train shares no session (so no dialog) with valid or test
        assert not {u[:5] for u in keys[0]} & {spk[:5]}
        for s in SPLITS:
            d = out / f"loso{k}_{s}"
            assert sorted(p.name for p in d.iterdir()) == set_files(d)
            assert validate_data_dir(d, emotions=EMOS, check_audio_exists=True) == len(sets[s])
            # labels (exc merged into hap) and dims are those of iemocap_all
            assert read_kaldi_map(d / "utt2emo") == {u: all_emo[u] for u in sets[s]}
            assert read_kaldi_map(d / "utt2dim") == {u: all_dim[u] for u in sets[s]}
    assert read_kaldi_map(out / "loso2_test" / "utt2emo")["Ses01M-Ses01F_impro01_M000"] == "hap"
    assert list(read_kaldi_map(out / "loso10_test" / "spk2utt")) == ["Ses05M"]


def test_stratified_split_is_the_shared_sklearn_split(tmp_path):
    from sklearn.model_selection import train_test_split

    utts = [iemocap._Utt(1, "", label, (1.0, 2.0, 3.0), "x", tmp_path / "x.wav")
            for label, n in (("ang", 100), ("hap", 35), ("neu", 3), ("sad", 2)) for i in range(n)]
    utts = [u._replace(corpus_id=f"Ses01F_impro01_F{i:03d}") for i, u in enumerate(utts)]
    rest, held = iemocap.stratified_split(utts[::-1], 0.1, 5)
    kept_idx, held_idx = train_test_split(list(range(len(utts))), test_size=0.1,
                                          stratify=[u.label for u in utts], random_state=5)
    assert held == [utts[i] for i in sorted(held_idx)]  # Kaldi order, whatever the input order
    assert rest == [utts[i] for i in sorted(kept_idx)]
    assert len(held) == 14 and Counter(u.label for u in held)["ang"] == 10
    assert iemocap.stratified_split(utts, 0.1, 6)[1] != held
    with pytest.raises(IemocapError, match=r"random validation set: cannot stratify: class "
                                           r"'fea' has only 1 item"):
        iemocap.stratified_split(utts + [utts[0]._replace(corpus_id="Ses01F_impro01_F999",
                                                           label="fea")], 0.1, 0)


def test_loso_none_trains_on_nine_speakers(prepared):
    out, _ = prepared
    everything = set(read_kaldi_map(out / "iemocap_all" / "utt2emo"))
    for k, spk in enumerate(SPEAKER_ORDER, 1):
        sets = loso_sets(out, k, "losonv", ("train", "test"))
        assert not (out / f"losonv{k}_valid").exists()
        assert set(sets["test"]) == speaker_ids(spk)
        assert set(sets["train"].values()) == set(SPEAKER_ORDER) - {spk}
        assert set(sets["train"]) == everything - set(sets["test"])
        for s in ("train", "test"):
            d = out / f"losonv{k}_{s}"
            assert sorted(p.name for p in d.iterdir()) == set_files(d)
            validate_data_dir(d, emotions=EMOS, check_audio_exists=True)
        # the same test speaker as the other protocols
        assert read_kaldi_map(out / f"losonv{k}_test" / "utt2emo") == \
            read_kaldi_map(out / f"loso{k}_test" / "utt2emo")
    # the utterance with no words trains every fold but Ses02M's, where it is tested
    assert NO_WORDS in read_kaldi_map(out / "losonv1_train" / "text")
    assert read_kaldi_map(out / "losonv4_test" / "text")[NO_WORDS] == ""
    assert read_kaldi_map(out / "losonv4_test" / datadir.EMPTY_TEXT_FILE) == {
        NO_WORDS: "[LAUGHTER] [GARBAGE]"}


def test_four_class_total_check():
    assert iemocap.FOUR_CLASS_TOTAL == 5531
    assert iemocap.check_four_class_total(5531, ["neu", "hap", "sad", "ang"], True) is None
    assert iemocap.check_four_class_total(5529, iemocap.DEFAULT_EMOTIONS, True) == (
        "the 4-class set (ang hap+exc neu sad) holds 5529 utterances, 2 fewer than the 5531 "
        "of the full release (-2): a partial or modified tree, or labels read differently")
    assert "1 more than the 5531" in iemocap.check_four_class_total(5532, EMOS, True)
    # another label set is not the 4-class set
    assert iemocap.check_four_class_total(10, ["ang", "neu"], True) is None
    assert iemocap.check_four_class_total(10, EMOS, False) is None


def test_loso_random_valid(tree, tmp_path):
    out = tmp_path / "data"
    counts = prepare_iemocap(tree, out, protocols=["loso"], loso_valid="random", loso_seed=3)
    assert sorted(p.name for p in out.iterdir()) == sorted(iemocap.set_names(["loso"], "random"))
    everything = set(read_kaldi_map(out / "iemocap_all" / "utt2emo"))
    valids = []
    for k, spk in enumerate(SPEAKER_ORDER, 1):
        sets = loso_sets(out, k, "losorv")
        assert set(sets["test"]) == speaker_ids(spk)
        keys = [set(sets[s]) for s in SPLITS]
        assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
        assert keys[0] | keys[1] | keys[2] == everything
        assert spk not in set(sets["train"].values()) | set(sets["valid"].values())
        assert set(sets["train"].values()) == set(SPEAKER_ORDER) - {spk}
        # 36 or 37 utterances in the pool: scikit-learn holds out ceil(3.6) = 4 or
        # ceil(3.7) = 4, one of each emotion
        emo = read_kaldi_map(out / f"losorv{k}_valid" / "utt2emo")
        assert sorted(emo.values()) == EMOS
        assert counts["sets"][f"losorv{k}_train"]["num_utts"] == 41 - len(keys[2]) - 4
        for s in SPLITS:
            validate_data_dir(out / f"losorv{k}_{s}", emotions=EMOS, check_audio_exists=True)
        valids.append(keys[1])
    # same seed: same files; another seed: another draw
    again = prepare_iemocap(tree, tmp_path / "again", protocols=["loso"], loso_valid="random",
                            loso_seed=3)
    assert again["sets"] == counts["sets"]
    assert snapshot(tmp_path / "again") == snapshot(out)
    prepare_iemocap(tree, tmp_path / "seed4", protocols=["loso"], loso_valid="random",
                    loso_seed=4)
    assert [set(read_kaldi_map(tmp_path / "seed4" / f"losorv{k}_valid" / "utt2emo"))
            for k in range(1, 11)] != valids


def test_protocols_select_sets(tree, tmp_path):
    prepare_iemocap(tree, tmp_path / "s", protocols=["session"])
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(
        iemocap.set_names(["session"]))
    assert not any(p.name.startswith("loso") for p in (tmp_path / "s").iterdir())
    for protocols, msg in ((["loso", "folds"], "unknown protocol 'folds'"),
                           (["loso", "loso"], "twice"), ([], "empty")):
        with pytest.raises(IemocapError, match=msg):
            prepare_iemocap(tree, tmp_path / "bad", protocols=protocols)
    with pytest.raises(IemocapError, match="--loso_valid: unknown mode 'next'"):
        prepare_iemocap(tree, tmp_path / "bad", loso_valid="next")
    with pytest.raises(IemocapError, match="--loso_valid_fraction 1.5"):
        prepare_iemocap(tree, tmp_path / "bad", loso_valid="random", loso_valid_fraction=1.5)
    assert not (tmp_path / "bad").exists()


def test_loso_missing_speaker(tmp_path):
    root = make_tree(tmp_path / "corpus")
    for dialog, utt, label in (("Ses03F_impro01", "M000", "exc"), ("Ses03F_impro01", "M001", "sad"),
                               ("Ses03M_script01_1", "M000", "neu"),
                               ("Ses03M_script01_1", "M001", "ang")):
        _replace_line(_emo(root, 3, dialog), f"\t{dialog}_{utt}\t{label}\t",
                      f"\t{dialog}_{utt}\tfru\t")
    work = tmp_path / "work"
    work.mkdir()
    for mode in ("partner", "random"):
        with pytest.raises(IemocapError, match=r"no kept utterance of speaker\(s\) Ses03M "
                                               r"\(LOSO fold\(s\) 6\)"):
            prepare_iemocap(root, work / "data", loso_valid=mode)
    assert list(work.iterdir()) == []
    # the session protocol alone still works
    counts = prepare_iemocap(root, work / "data", protocols=["session"])
    assert counts["num_utts"] == 37
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(root), "--out_dir", str(work / "d2")])
    assert "ERROR: leave-one-speaker-out: no kept utterance of speaker(s) Ses03M" in e.value.code


# ---------------------------------------------------------------- bad input

def _emo(root, n, dialog):
    return root / f"Session{n}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"


def _replace_line(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def break_bad_line(root):
    p = _emo(root, 2, "Ses02M_script01_1")
    _replace_line(p, "\tneu\t[2.5000, 2.5000, 2.5000]", "\tneu\t[2.5000, 2.5000]")
    return r"Ses02M_script01_1.txt:9: cannot parse consensus line"


def break_unknown_label(root):
    p = _emo(root, 3, "Ses03F_impro01")
    _replace_line(p, "Ses03F_impro01_F001\tang", "Ses03F_impro01_F001\tAng")
    return r"Ses03F_impro01.txt:15: utterance Ses03F_impro01_F001 has unknown label 'Ang'"


def break_missing_wav(root):
    wav = root / "Session5" / "sentences" / "wav" / "Ses05F_impro01" / "Ses05F_impro01_M001.wav"
    wav.unlink()
    return (rf"{wav}: no such file \(utterance Ses05F_impro01_M001 labelled at "
            r".*Ses05F_impro01.txt:21\)")


def break_missing_transcript_line(root):
    p = root / "Session1" / "dialog" / "transcriptions" / "Ses01M_script01_1.txt"
    _replace_line(p, "Ses01M_script01_1_M000 [", "Ses01M_script01_1_M000: [")
    return rf"{p}: no '<utt> \[start-end\]: text' line for Ses01M_script01_1_M000"


def break_missing_transcript_file(root):
    p = root / "Session4" / "dialog" / "transcriptions" / "Ses04F_impro01.txt"
    p.unlink()
    return rf"{p}: no such file"


def break_missing_session(root):
    import shutil
    shutil.rmtree(root / "Session3")
    return rf"{root / 'Session3'}: no such directory"


def break_missing_emoevaluation(root):
    import shutil
    d = root / "Session2" / "dialog" / "EmoEvaluation"
    shutil.rmtree(d)
    return rf"{d}: no such directory"


def break_missing_transcriptions(root):
    import shutil
    d = root / "Session5" / "dialog" / "transcriptions"
    shutil.rmtree(d)
    return rf"{d}: no such directory"


def break_duplicate_utterance(root):
    p = _emo(root, 1, "Ses01F_impro01")
    with p.open("a") as f:
        f.write(consensus_line(99.0, "Ses01F_impro01_F000", "sad", (1, 1, 1)))
    return r"Ses01F_impro01.txt:39: utterance Ses01F_impro01_F000 was already labelled at .*:3"


def break_foreign_utterance(root):
    p = _emo(root, 1, "Ses01F_impro01")
    _replace_line(p, "\tSes01F_impro01_F001\t", "\tSes01F_impro02_F001\t")
    return r"Ses01F_impro01.txt:15: utterance Ses01F_impro02_F001 is not of dialog Ses01F_impro01"


BREAKS = [break_bad_line, break_unknown_label, break_missing_wav,
          break_missing_transcript_line, break_missing_transcript_file, break_missing_session,
          break_missing_emoevaluation, break_missing_transcriptions, break_duplicate_utterance,
          break_foreign_utterance]


@pytest.mark.parametrize("breaker", BREAKS, ids=[b.__name__[6:] for b in BREAKS])
def test_bad_tree_fails_and_writes_nothing(tmp_path, breaker):
    work = tmp_path / "work"
    work.mkdir()
    root = make_tree(tmp_path / "corpus")
    out = work / "data"
    # A previous run and unrelated content: both must survive.
    prepare_iemocap(root, out)
    (out / "mini_train").mkdir()
    (out / "mini_train" / "text").write_text("u1 hello\n")
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(work)
    msg = breaker(root)
    with pytest.raises(IemocapError, match=msg):
        prepare_iemocap(root, out)
    assert snapshot(work) == before
    # And with no previous output nothing appears at all.
    with pytest.raises(IemocapError, match=msg):
        prepare_iemocap(root, work / "fresh")
    assert sorted(p.name for p in work.iterdir()) == ["data"]


def test_consensus_line_not_utf8(tmp_path):
    p = tmp_path / "Ses01F_impro01.txt"
    p.write_bytes(b"% header\n\n[1.0 - 2.0]\tSes01F_impro01_F000\tneu\t[1, 2, 3]\n"
                  b"C-E1:\t\xff\xfe odd;\t()\n[\xff\xfe]\n")
    with pytest.raises(IemocapError, match=r"Ses01F_impro01.txt:5: consensus line is not UTF-8"):
        read_consensus(p)


def test_root_errors(tree, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(IemocapError, match=rf"--iemocap_root {missing}: no such directory"):
        prepare_iemocap(missing, tmp_path / "data")
    parent = tree.parent
    with pytest.raises(IemocapError, match=rf"did you mean --iemocap_root {tree}\?"):
        prepare_iemocap(parent, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_failed_install_restores_previous_sets(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "corpus")
    out = tmp_path / "work" / "data"
    counts = prepare_iemocap(root, out, emotions=["ang", "sad"])
    assert counts["dropped_per_label"]["exc"] == 5  # counted under the corpus label
    assert counts["dropped_per_label"]["hap"] == 5 and counts["dropped_per_label"]["neu"] == 11
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(tmp_path / "work")
    real, calls = datadir._move, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 8:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(datadir, "_move", flaky)
    with pytest.raises(OSError, match="disk full"):
        prepare_iemocap(root, out)
    assert snapshot(tmp_path / "work") == before
    monkeypatch.setattr(datadir, "_move", real)
    prepare_iemocap(root, out)  # a rerun replaces the sets and keeps the rest
    assert read_kaldi_map(out / "iemocap_all" / "utt2emo")["Ses01F-Ses01F_impro01_F000"] == "neu"
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["data"]
