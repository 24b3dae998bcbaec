"""Stage-6 scoring (espnet_ser.scoring.results) and RESULTS.md rendering, hand-computed."""

import json
import subprocess
from pathlib import Path

import pytest

from espnet_ser.scoring.results import (
    ScoringError,
    environment_info,
    find_score_files,
    read_emotion_text,
    render_result_txt,
    score,
    write_score_outputs,
)

# Emotion token at the front (u1), the end (u2, u4) and in the middle (u3).
REF = """\
u1 <ang> the cat sat
u2 hello world <hap>
u3 a b <neu> c
u4 x y z w <neu>
"""
# u1: cat->bat (S); u2: token missing (D, emotion none); u3: extra word d (I);
# u4: two tokens, the last (<sad>) is the prediction: I(<hap>) + S(<neu>-><sad>).
HYP = """\
u1 <ang> the bat sat
u2 hello world
u3 a b <neu> c d
u4 <hap> x y z w <sad>
"""

COUNTS = {"snt": 4, "wrd": 16, "corr": 13, "sub": 2, "del": 1, "ins": 2, "err": 5, "serr": 4}
COUNTS_NO_EMO = {"snt": 4, "wrd": 12, "corr": 11, "sub": 1, "del": 0, "ins": 1, "err": 2,
                 "serr": 2}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "ref", REF), write(tmp_path / "hyp", HYP)


def test_score_hand_computed(files):
    ref, hyp = files
    s = score(ref, hyp, emotions="ang hap neu sad").scores
    assert s["num_utts"] == 4
    assert s["emotions"] == ["ang", "hap", "neu", "sad"]
    assert s["wer_counts"] == COUNTS
    assert s["wer_counts_no_emo"] == COUNTS_NO_EMO
    assert s["wer"] == s["ww"] == pytest.approx(100 * 5 / 16)
    assert s["wer_no_emo"] == s["ww_no_emo"] == pytest.approx(100 * 2 / 12)
    # per reference emotion, pooled: neu = (1 + 2) / (4 + 5) words, not mean(25 %, 40 %)
    assert s["wer_counts_per_emotion"]["neu"] == {
        "snt": 2, "wrd": 9, "corr": 8, "sub": 1, "del": 0, "ins": 2, "err": 3, "serr": 2}
    assert s["wer_per_emotion"] == pytest.approx({"ang": 25.0, "hap": 100 / 3, "neu": 100 / 3})
    assert s["uw"] == pytest.approx((25.0 + 100 / 3 + 100 / 3) / 3)
    assert s["wer_per_emotion_no_emo"] == pytest.approx(
        {"ang": 100 / 3, "hap": 0.0, "neu": 100 / 7})
    assert s["uw_no_emo"] == pytest.approx((100 / 3 + 0.0 + 100 / 7) / 3)
    assert s["wa"] == pytest.approx(50.0)
    assert s["acc_per_emotion"] == pytest.approx({"ang": 100.0, "hap": 0.0, "neu": 50.0})
    assert s["ua"] == pytest.approx(50.0)
    assert s["confusion"] == {
        "labels": ["ang", "hap", "neu", "sad"],
        "columns": ["ang", "hap", "neu", "sad", "none"],
        "matrix": [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]],
    }
    assert s["num_hyp_multiple_emotions"] == 1
    assert s["num_hyp_no_emotion"] == 1
    assert s["num_missing_hyp"] == 0


def test_default_labels_are_the_reference_classes(files):
    ref, hyp = files
    s = score(ref, hyp).scores
    assert s["emotions"] == ["ang", "hap", "neu"]
    # <sad> is predicted but not a reference class: its own column
    assert s["confusion"]["columns"] == ["ang", "hap", "neu", "sad", "none"]


def test_utt_subset(files, tmp_path):
    ref, hyp = files
    subset = write(tmp_path / "unseen", "u1\nu4 some comment\n")
    s = score(ref, hyp, utt_subset=subset).scores
    assert s["num_utts"] == 2
    # u1: 4 words 1 error; u4: 5 words 2 errors
    assert s["wer_counts"]["wrd"] == 9 and s["wer_counts"]["err"] == 3
    assert s["wer_per_emotion"] == pytest.approx({"ang": 25.0, "neu": 40.0})
    assert s["utt_subset"] == str(subset)
    write(subset, "u1\nu7\n")
    with pytest.raises(ScoringError, match=r"unseen:2: utterance u7 is not in the reference"):
        score(ref, hyp, utt_subset=subset)


def test_reference_needs_exactly_one_token(tmp_path):
    ref = write(tmp_path / "ref", "u1 a <ang>\nu2 hello world\n")
    with pytest.raises(ScoringError, match=r"ref:2: utterance u2: the reference has no emotion"):
        read_emotion_text(ref, "reference")
    write(ref, "u1 <hap> a <ang>\n")
    with pytest.raises(ScoringError, match=r"ref:1: utterance u1: .* 2 emotion tokens"):
        read_emotion_text(ref, "reference")
    write(ref, "u1 a <sad>\n")
    with pytest.raises(ScoringError, match=r"ref:1: utterance u1: reference emotion <sad>"):
        read_emotion_text(ref, "reference", ["ang", "hap"])


def test_hypothesis_may_be_empty(tmp_path):
    hyp = write(tmp_path / "hyp", "u1\nu2 a <unk> <neu>\n")
    lines = read_emotion_text(hyp, "hypothesis")
    assert lines["u1"].words == [] and lines["u1"].codes == []
    assert lines["u2"].codes == ["neu"] and lines["u2"].words_no_emo == ["a", "<unk>"]
    assert lines["u2"].lineno == 2


def test_missing_and_extra_utterances(files, tmp_path):
    ref, _ = files
    hyp = write(tmp_path / "hyp2", "u1 <ang> the cat sat\nu3 a b <neu> c\n")
    with pytest.raises(ScoringError, match=r"utterance u2 \(line 2 of .*ref\) has no hypothesis"):
        score(ref, hyp)
    s = score(ref, hyp, allow_missing=True).scores
    assert s["num_missing_hyp"] == 2
    # u2 (3 words) and u4 (5 words) are all deletions; u1 and u3 are right.
    assert s["wer_counts"] == {"snt": 4, "wrd": 16, "corr": 8, "sub": 0, "del": 8, "ins": 0,
                               "err": 8, "serr": 2}
    assert s["confusion"]["columns"][-1] == "none"
    assert s["wa"] == 50.0
    write(hyp, HYP + "u9 <ang> extra\n")
    with pytest.raises(ScoringError, match=r"hyp2:5: utterance u9 is not in the reference"):
        score(ref, hyp)


def test_result_txt_tables(files):
    ref, hyp = files
    text = render_result_txt(score(ref, hyp, emotions="ang hap neu sad"))
    lines = text.splitlines()
    # Sum/Avg rows: with token 13/16 corr, 2 sub, 1 del, 2 ins, 5 err, 4 of 4 sentences
    sums = [line.split("|")[1:-1] for line in lines if line.startswith("| Sum/Avg")]
    assert [[c.strip() for c in row] for row in sums] == [
        ["Sum/Avg", "4", "16", "81.2", "12.5", "6.2", "12.5", "31.2", "100.0"],
        ["Sum/Avg", "4", "12", "91.7", "8.3", "0.0", "8.3", "16.7", "50.0"],
    ]
    neu = [[c.strip() for c in line.split("|")[1:-1]] for line in lines
           if line.startswith("| neu ")]
    assert neu[0] == ["neu", "2", "9", "88.9", "11.1", "0.0", "22.2", "33.3", "100.0"]
    assert neu[1] == ["neu", "2", "7", "100.0", "0.0", "0.0", "14.3", "14.3", "50.0"]
    assert "WW = 31.2   UW = 30.6" in text
    assert "WW_no_emo = 16.7   UW_no_emo = 15.9" in text
    assert "with emotion token" in text and "GST paper Tables 3, 5" in text
    assert any(line.startswith("| hap ") and line.split("|")[-2].strip() == "1"
               and line.split("|")[-3].strip() == "1" for line in lines)  # none=1, total=1
    assert "id: (u4)" in text and "Emotion: ref neu  hyp sad  (wrong)" in text


def test_write_outputs(files, tmp_path):
    ref, hyp = files
    out = tmp_path / "score"
    write_score_outputs(score(ref, hyp), out)
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "result.txt", "scores.json"]
    assert json.loads((out / "scores.json").read_text())["wer_counts"] == COUNTS
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- RESULTS.md


def fake_recipe(tmp_path, ref, hyp):
    recipe = tmp_path / "recipe"
    exp = recipe / "exp" / "asr_gst"
    write_score_outputs(score(ref, hyp, emotions="ang hap neu sad"),
                        exp / "decode_beam10" / "test" / "score", plot=False)
    write(exp / "config.yaml", "encoder: gst_conformer\n")
    base = recipe / "exp" / "prosody_baseline" / "test"
    base.mkdir(parents=True)
    write(base / "scores.json", json.dumps({
        "num_utts": 8, "wa": 62.5, "ua": 58.25,
        "acc_per_emotion": {"ang": 50.0, "hap": 33.0, "neu": 100.0, "sad": 50.0},
    }))
    (recipe / "exp" / "asr_gst" / "decode_beam10" / "test" / "text").write_text("ignored\n")
    return recipe


def test_find_score_files(files, tmp_path):
    recipe = fake_recipe(tmp_path, *files)
    found = [(e, d, p.relative_to(recipe).as_posix()) for e, d, p in find_score_files(recipe)]
    assert found == [
        ("asr_gst", "decode_beam10/test", "exp/asr_gst/decode_beam10/test/score/scores.json"),
        ("prosody_baseline", "test", "exp/prosody_baseline/test/scores.json"),
    ]


def test_environment_git_hash_of_a_checkout():
    repo = Path(__file__).resolve().parents[2]
    try:
        expected = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                                  capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert environment_info(repo)["Git hash"] == expected


# A decoding output directory: u2 could not be decoded (empty hypothesis, listed in failed).
DECODED = """\
u1 <ang> the cat sat
u2
u3 a b <neu> c
u4 x y z w <sad>
"""


def test_failed_decodes_are_scored_empty_and_counted(files, tmp_path):
    ref, _ = files
    dec = tmp_path / "decode"
    dec.mkdir()
    hyp = write(dec / "text", DECODED)
    s = score(ref, hyp).scores
    assert s["num_failed_decodes"] is None  # no failed file: not known
    write(dec / "failed", "u2 TooShortUttError: has 3 frames\n")
    result = score(ref, hyp)
    s = result.scores
    assert s["num_failed_decodes"] == 1 and s["num_missing_hyp"] == 0
    # u2: 3 deletions; u4: <neu> -> <sad> one substitution
    assert s["wer_counts"] == {"snt": 4, "wrd": 16, "corr": 12, "sub": 1, "del": 3, "ins": 0,
                               "err": 4, "serr": 2}
    assert s["wer_counts_no_emo"] == {"snt": 4, "wrd": 12, "corr": 10, "sub": 0, "del": 2,
                                      "ins": 0, "err": 2, "serr": 1}
    assert s["wa"] == 50.0  # u1, u3 right; u2 none, u4 sad wrong
    assert s["confusion"]["matrix"][1][-1] == 1  # u2: hap -> none
    text = render_result_txt(result)
    assert "  missing hypotheses (scored as empty): 0\n" in text
    assert "  failed decodes (scored as empty): 1\n" in text
    assert "id: (u2)  [decoding failed]" in text
    # only the scored utterances count
    subset = write(tmp_path / "subset", "u1\nu3\n")
    assert score(ref, hyp, utt_subset=subset).scores["num_failed_decodes"] == 0
