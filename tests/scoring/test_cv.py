"""Cross-validation summary: per-fold rows, mean over folds, pooled over utterances."""

import json

import pytest

from espnet_ser.scoring.cv import summarize_folds
from espnet_ser.scoring.results import ScoringError, score, write_score_outputs

# fold 1: 2 utterances, 1 emotion right (ang), WER with token 1/8; fold 2: 4 utterances,
# all emotions right, no word errors.
FOLD1 = (
    "a1 the cat sat <ang>\nb1 a dog ran <hap>\n",
    "a1 the cat sat <ang>\nb1 a log ran <neu>\n",
)
FOLD2 = (
    "c2 one two <neu>\nd2 three <sad>\ne2 four five six <ang>\nf2 seven <hap>\n",
    "c2 one two <neu>\nd2 three <sad>\ne2 four five six <ang>\nf2 seven <hap>\n",
)


def make_recipe(tmp_path, name="asr_x", tag="decode_d"):
    paths = []
    for k, (ref, hyp) in ((1, FOLD1), (2, FOLD2)):
        d = tmp_path / "exp" / f"{name}_fold{k}" / tag / f"fold{k}_test"
        d.mkdir(parents=True)
        (d / "ref").write_text(ref)
        (d / "text").write_text(hyp)
        write_score_outputs(score(d / "ref", d / "text", "ang hap neu sad"), d / "score", plot=False)
        paths.append(d / "score" / "scores.json")
    return paths


def test_mean_and_pooled_differ_as_defined(tmp_path):
    paths = make_recipe(tmp_path)
    s = summarize_folds(paths, tmp_path / "cv", names=["fold1", "fold2"])
    assert s["folds"]["fold1"]["wa"] == pytest.approx(50.0)
    assert s["folds"]["fold2"]["wa"] == pytest.approx(100.0)
    assert s["mean"]["wa"] == pytest.approx(75.0)  # each fold weighs the same
    assert s["pooled"]["wa"] == pytest.approx(500 / 6)  # 5 of 6 utterances right
    # WER with the token: fold 1 has 2 errors (log, <neu>) in 8 words, fold 2 none in 11
    assert s["folds"]["fold1"]["ww"] == pytest.approx(25.0)
    assert s["mean"]["ww"] == pytest.approx(12.5)
    assert s["pooled"]["ww"] == pytest.approx(200 / 19)
    assert s["mean"]["num_utts"] == 6 and s["pooled"]["num_utts"] == 6
    pooled = json.loads((tmp_path / "cv" / "scores.json").read_text())
    assert pooled["num_utts"] == 6
    md = (tmp_path / "cv" / "cv_summary.md").read_text()
    assert "|mean|6|75.0|" in md and "|pooled|6|83.3|" in md and "|fold2|4|100.0|" in md


def test_overlapping_folds_are_an_error(tmp_path):
    paths = make_recipe(tmp_path)
    with pytest.raises(ScoringError, match="a1"):
        summarize_folds([paths[0], paths[0]], tmp_path / "cv")
