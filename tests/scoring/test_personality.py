"""Table 2 of the personality paper from pooled-folds scores: means over folds, relative
improvement over row 0, Pred of row 0 = its GT run, rows not run shown as such."""

import json

import pytest

from espnet_ser.scoring.personality import cv_score_file, write_table2
from espnet_ser.scoring.results import ScoringError


def write_cv(exp, row, mode, ua_folds, acc_folds):
    path = cv_score_file(exp, "train_ser_hubert_row", row, mode)
    path.parent.mkdir(parents=True)
    folds = [dict(name=f"fold{k}_test", ua=u, wa=a, n=10, correct=0, macro_f1=0)
             for k, (u, a) in enumerate(zip(ua_folds, acc_folds), 1)]
    path.write_text(json.dumps(dict(
        kind="ser_cv", wa=0.0, ua=0.0, folds=folds,
        ua_mean=sum(ua_folds) / len(ua_folds), wa_mean=sum(acc_folds) / len(acc_folds))))


def test_table2_means_relative_improvements_and_missing_rows(tmp_path):
    exp = tmp_path / "exp"
    # the paper's row 0, 1 and 8 means, spread over two folds
    write_cv(exp, 0, "gt", [70.54, 72.54], [71.38, 71.38])
    write_cv(exp, 1, "gt", [79.20, 79.20], [77.69, 79.69])
    write_cv(exp, 8, "gt", [82.27, 82.27], [81.47, 81.47])
    write_cv(exp, 8, "pred", [78.22, 78.22], [77.33, 77.33])
    t = write_table2(exp, tmp_path / "out")
    assert t[0]["gt"]["ua"] == pytest.approx(0.7154) and t[0]["pred"] == t[0]["gt"]
    assert t[0]["gt"]["ua_rel"] is None
    assert t[1]["gt"]["ua_rel"] == pytest.approx(10.71, abs=0.01)
    assert t[1]["gt"]["acc_rel"] == pytest.approx(10.24, abs=0.01)
    assert t[8]["gt"]["ua_rel"] == pytest.approx(15.00, abs=0.01)
    assert t[8]["pred"]["ua_rel"] == pytest.approx(9.34, abs=0.01)
    assert t[1]["pred"] is None and t[2]["gt"] is None
    assert (t[8]["speaker"], t[8]["listener"], t[8]["fusion"]) == ("q'_s", "q_l", "seq")
    assert (t[0]["speaker"], t[0]["fusion"]) == ("-", "-")
    assert [f["ua"] for f in t[1]["gt"]["folds"]] == pytest.approx([0.792, 0.792])
    text, per_fold = (tmp_path / "out" / "table2.txt").read_text().split("Per fold")
    lines = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| ")}
    fold_lines = [ln.split("|")[1:3] for ln in per_fold.splitlines() if ln.startswith("| ")]
    assert [[c.strip() for c in cells] for cells in fold_lines[1:]] == [
        ["0", "GT"], ["1", "GT"], ["8", "GT"], ["8", "PRED"]]
    assert "0.7920" in lines["1"] and "10.71%" in lines["1"] and "not run" in lines["1"]
    assert "not run" in lines["2"]
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "|8|q'_s|q_l|seq|0.8227|0.8147|15.00%|" in md
    assert json.loads((tmp_path / "out" / "table2.json").read_text())["8"]["pred"]["ua"] == 0.7822


def test_table2_refuses_a_score_that_is_not_pooled(tmp_path):
    path = cv_score_file(tmp_path, "train_ser_hubert_row", 0, "gt")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(dict(kind="ser", wa=50.0, ua=50.0)))
    with pytest.raises(ScoringError, match="not a pooled-folds score"):
        write_table2(tmp_path, tmp_path / "out")
