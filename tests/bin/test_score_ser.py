"""The SER scoring entry point: python -m espnet_ser.bin.score_ser (hand-computed)."""

import json

import pytest

from espnet_ser.bin import score_ser
from tests.scoring.test_ser import EMOTIONS, make_set


TRAIN_LOG = """\
[h] 2026-01-01 10:01:00,000 (trainer:394) INFO: 1epoch results: [train] loss=1.400, acc=0.300, \
[valid] loss=1.300, acc=0.400, ua=0.350
[h] 2026-01-01 10:02:00,000 (trainer:394) INFO: 2epoch results: [train] loss=1.100, acc=0.450, \
[valid] loss=1.200, acc=0.500, ua=0.475
"""


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
