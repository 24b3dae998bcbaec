"""score_ser: WA / UA, classification report, confusion, WER / CER, curves; hand-computed."""

import json
from pathlib import Path

import pytest

from espnet_ser.bin import score_ser
from espnet_ser.scoring.results import ScoringError
from espnet_ser.scoring.ser import score_ser as score_ser_fn

# utt: ref emotion, hyp emotion ("none": failed decode), ref transcript, CTC transcript
UTTS = {
    "u1": ("ang", "ang", "<ang> the cat sat", "the bat sat"),  # 1 sub / 3 words; 1 / 11 chars
    "u2": ("ang", "hap", "hello world", "hello world"),
    "u3": ("hap", "hap", "a b", "a b c"),  # 1 ins; chars: 2 ins (<space> c)
    "u4": ("neu", "neu", "x", "x"),
    "u5": ("neu", "none", "yes no", ""),  # failed: 2 del; 6 chars deleted
    "u6": ("neu", "sad", "go", "go"),
    "u7": ("sad", "sad", "up", "up"),
    "u8": ("sad", "neu", "on", "of"),  # 1 sub; 1 char sub
}
EMOTIONS = "ang hap neu sad"
TRAIN_LOG = """\
[h] 2026-01-01 10:01:00,000 (trainer:394) INFO: 1epoch results: [train] loss=1.400, acc=0.300, \
[valid] loss=1.300, acc=0.400, ua=0.350
[h] 2026-01-01 10:02:00,000 (trainer:394) INFO: 2epoch results: [train] loss=1.100, acc=0.450, \
[valid] loss=1.200, acc=0.500, ua=0.475
"""


def lines(d):
    return "".join(f"{u} {v}\n" if v else f"{u}\n" for u, v in sorted(d.items()))


def make_set(root: Path, utts=UTTS, failed=("u5",)):
    """data/<set>/{utt2emo,text} and decode/<set>/{emotion,text,failed}; returns their paths."""
    data, dec = root / "data", root / "decode"
    data.mkdir(parents=True)
    dec.mkdir(parents=True)
    (data / "utt2emo").write_text(lines({u: v[0] for u, v in utts.items()}))
    (data / "text").write_text(lines({u: v[2] for u, v in utts.items()}))
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items()}))
    (dec / "text").write_text(lines({u: v[3] for u, v in utts.items()}))
    (dec / "failed").write_text(lines({u: "TooShortUttError: x" for u in failed}))
    return data, dec


def test_scores_hand_computed(tmp_path):
    data, dec = make_set(tmp_path)
    (tmp_path / "train.log").write_text(TRAIN_LOG)
    out = tmp_path / "score"
    score_ser.main(["--ref_emotion", str(data / "utt2emo"), "--hyp_emotion", str(dec / "emotion"),
                    "--emotions", EMOTIONS, "--ref_text", str(data / "text"),
                    "--hyp_text", str(dec / "text"), "--train_log", str(tmp_path / "train.log"),
                    "--outdir", str(out)])
    s = json.loads((out / "scores.json").read_text())
    assert s["kind"] == "ser" and s["emotions"] == EMOTIONS.split()
    assert (s["n"], s["correct"]) == (8, 4)
    assert s["wa"] == pytest.approx(50.0)
    assert s["ua"] == pytest.approx((50 + 100 + 100 / 3 + 50) / 4)
    assert s["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 0.4 + 0.5) / 4)
    assert s["per_class"]["neu"] == pytest.approx(
        dict(precision=50.0, recall=100 / 3, f1=40.0, support=3))
    assert s["weighted_avg"]["f1"] == pytest.approx(100 * 4.2 / 8)
    assert s["confusion"] == {"labels": ["ang", "hap", "neu", "sad"],
                              "columns": ["ang", "hap", "neu", "sad", "none"],
                              "matrix": [[1, 1, 0, 0, 0], [0, 1, 0, 0, 0],
                                         [0, 0, 1, 1, 1], [0, 0, 1, 1, 0]]}
    assert (s["num_none"], s["num_failed"]) == (1, 1)
    assert s["wer"]["errors"] == 5 and s["wer"]["ref_words"] == 13
    assert s["wer"]["wer"] == pytest.approx(100 * 5 / 13)
    assert (s["wer"]["counts"]["sub"], s["wer"]["counts"]["ins"], s["wer"]["counts"]["del"]) == (2, 1, 2)
    assert s["cer"]["errors"] == 10 and s["cer"]["ref_chars"] == 38
    assert s["curves"] == str(out / "curves.png")

    result = (out / "result.txt").read_text()
    assert "%WA 50.00 [ 4 / 8 ]" in result
    assert "%UA 58.33 [ mean recall over 4 classes ]" in result
    assert "%WER 38.46 [ 5 / 13, 1 ins, 2 del, 2 sub ]" in result
    assert "%CER 26.32 [ 10 / 38, 2 ins, 6 del, 2 sub ]" in result
    assert "hypotheses 'none' (no prediction, counted as errors): 1" in result
    report = [l.split() for l in result.splitlines()]
    assert ["neu", "50.00", "33.33", "40.00", "3"] in report
    assert ["macro", "avg", "62.50", "58.33", "55.83", "8"] in report
    assert ["accuracy", "50.00", "8"] in report
    assert ["|", "neu", "|", "0", "|", "0", "|", "1", "|", "1", "|", "1", "|", "3", "|"] in report
    assert (out / "predictions").read_text() == (
        "u1 ang ang\nu2 ang hap\nu3 hap hap\nu4 neu neu\nu5 neu none\nu6 neu sad\n"
        "u7 sad sad\nu8 sad neu\n")
    for png in ("confusion.png", "curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_without_transcripts_and_default_classes(tmp_path):
    data, dec = make_set(tmp_path)
    s, preds = score_ser_fn(data / "utt2emo", dec / "emotion")
    assert s["wer"] is None and s["cer"] is None and s["emotions"] == ["ang", "hap", "neu", "sad"]
    assert preds["u5"] == ("neu", None)


def test_missing_hypothesis_only_allowed_when_failed(tmp_path):
    utts = dict(UTTS)
    data, dec = make_set(tmp_path, failed=("u5",))
    # u5 missing from the hypotheses but listed as failed: scored as none
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items() if u != "u5"}))
    (dec / "text").write_text(lines({u: v[3] for u, v in utts.items() if u != "u5"}))
    s, _ = score_ser_fn(data / "utt2emo", dec / "emotion", EMOTIONS, data / "text", dec / "text")
    assert (s["correct"], s["num_none"], s["wer"]["errors"]) == (4, 1, 5)
    # u6 and u7 missing and not failed: an error naming them
    (dec / "emotion").write_text(lines({u: v[1] for u, v in utts.items() if u not in ("u6", "u7")}))
    with pytest.raises(ScoringError, match="u6, u7"):
        score_ser_fn(data / "utt2emo", dec / "emotion", EMOTIONS)


def test_errors(tmp_path):
    data, dec = make_set(tmp_path)
    with open(dec / "emotion", "a") as f:
        f.write("zz9 ang\n")
    with pytest.raises(SystemExit, match="zz9 are not in the reference"):
        score_ser.main(["--ref_emotion", str(data / "utt2emo"), "--hyp_emotion",
                        str(dec / "emotion"), "--outdir", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()
    data2, dec2 = make_set(tmp_path / "b")
    with pytest.raises(ScoringError, match="not one of --emotions"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", "ang hap neu")
    with pytest.raises(ScoringError, match="both --ref_text and --hyp_text"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", EMOTIONS, ref_text=data2 / "text")
    (data2 / "text").write_text("u1 the cat sat\n")
    with pytest.raises(ScoringError, match="no reference transcript for utterance"):
        score_ser_fn(data2 / "utt2emo", dec2 / "emotion", EMOTIONS, data2 / "text", dec2 / "text")
