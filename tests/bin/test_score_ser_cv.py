"""python -m espnet_ser.bin.score_ser_cv: pooled folds, per-fold table, recipe mode, RESULTS.md."""

import json
import math

import pytest

from espnet_ser.bin import score_ser, score_ser_cv
from tests.scoring.test_ser import EMOTIONS, FOLDS, UTTS, make_set, score_folds


def test_pooled_hand_computed(tmp_path):
    dirs = score_folds(tmp_path)
    out = tmp_path / "cv"
    score_ser_cv.main(["--score_dirs", *map(str, dirs), "--outdir", str(out)])
    s = json.loads((out / "scores.json").read_text())
    assert s["kind"] == "ser_cv" and s["num_folds"] == 2
    assert [f["name"] for f in s["folds"]] == ["fold1", "fold2"]
    assert [f["wa"] for f in s["folds"]] == pytest.approx([200 / 3, 40.0])
    assert [f["ua"] for f in s["folds"]] == pytest.approx([75.0, (100 / 3 + 50) / 2])
    # pooled accuracy = total correct / total utterances, not the mean of the fold WAs
    assert (s["n"], s["correct"]) == (8, 4) and s["wa"] == pytest.approx(50.0)
    assert s["wa_mean"] == pytest.approx((200 / 3 + 40) / 2)
    assert s["wa_std"] == pytest.approx((200 / 3 - 40) / math.sqrt(2))
    assert s["ua"] == pytest.approx((50 + 100 + 100 / 3 + 50) / 4)
    assert s["ua_std"] == pytest.approx((75 - 125 / 3) / math.sqrt(2))
    assert s["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 0.4 + 0.5) / 4)
    # overall WER = sum of errors / sum of reference words (5 / 13), not mean(2/7, 3/6)
    assert [f["wer"] for f in s["folds"]] == pytest.approx([200 / 7, 50.0])
    assert s["wer"]["errors"] == 5 and s["wer"]["ref_words"] == 13
    assert s["wer"]["wer"] == pytest.approx(100 * 5 / 13)
    assert s["wer_mean"] == pytest.approx((200 / 7 + 50.0) / 2)  # eq. 5 of the multi-task paper
    assert s["num_failed"] == 1 and s["num_none"] == 1
    assert s["confusion"]["matrix"] == [[1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 1, 1],
                                        [0, 0, 1, 1, 0]]
    result = (out / "result.txt").read_text()
    rows = [l.replace("|", " ").split() for l in result.splitlines()]
    assert ["fold1", "3", "2", "66.67", "75.00", "66.67", "28.57", "12.00"] in rows
    assert ["fold2", "5", "2", "40.00", "41.67", "45.00", "50.00", "53.85"] in rows
    assert ["mean", "53.33", "58.33", "39.29"] in rows
    assert ["std", "18.86", "23.57"] in rows
    assert ["pooled", "8", "4", "50.00", "58.33", "55.83", "38.46", "26.32"] in rows
    assert "%WA 50.00 [ 4 / 8 ]" in result
    assert len((out / "predictions").read_text().splitlines()) == 8
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def recipe_with_ser_and_asr_folds(tmp_path):
    """exp/ser_x_fold{1,2} scored by score_ser, exp/asr_x_fold{1,2} by score (emotion tokens)."""
    from espnet_ser.scoring.results import score, write_score_outputs

    recipe = tmp_path / "recipe"
    for k, (name, utts) in enumerate(FOLDS.items(), 1):
        data, dec = make_set(tmp_path / name, {u: UTTS[u] for u in utts},
                             failed=[u for u in utts if u == "u5"])
        score_ser.main(["--ref_emotion", str(data / "utt2emo"), "--hyp_emotion",
                        str(dec / "emotion"), "--emotions", EMOTIONS, "--ref_text",
                        str(data / "text"), "--hyp_text", str(dec / "text"), "--plot", "false",
                        "--outdir", str(recipe / f"exp/ser_x_fold{k}/decode_d/fold{k}_test/score")])
        d = recipe / f"exp/asr_x_fold{k}/decode_d/fold{k}_test"
        d.mkdir(parents=True)
        (d / "ref").write_text("".join(
            f"{u} <{UTTS[u][0]}> {UTTS[u][2].replace('<ang> ', '')}\n" for u in utts))
        (d / "text").write_text("".join(f"{u} <{UTTS[u][0]}> {UTTS[u][3]}\n" for u in utts))
        write_score_outputs(score(d / "ref", d / "text", EMOTIONS), d / "score", plot=False)
    return recipe


def test_recipe_mode_and_results_md(tmp_path):
    from espnet_ser.bin import score_cv
    from espnet_ser.scoring.results import render_results_md

    recipe = recipe_with_ser_and_asr_folds(tmp_path)
    score_ser_cv.main(["--recipe_dir", str(recipe), "--folds", "1 2", "--plot", "false"])
    s = json.loads((recipe / "exp/ser_x_cv/decode_d/cv_test/score/scores.json").read_text())
    assert s["kind"] == "ser_cv" and s["n"] == 8 and [f["name"] for f in s["folds"]] == [
        "fold1", "fold2"]
    # the emotion-token CV summary ignores the SER folds (and vice versa)
    score_cv.main(["--recipe_dir", str(recipe), "--folds", "1 2"])
    assert (recipe / "exp/asr_x_cv/decode_d/cv_test/score/cv_summary.json").is_file()
    assert not (recipe / "exp/ser_x_cv/decode_d/cv_test/score/cv_summary.json").exists()
    assert not (recipe / "exp/asr_x_cv/decode_d/cv_test/score/predictions").exists()

    text = render_results_md(recipe, env={"date": "today"})
    lines = text.splitlines()
    ser1 = text[text.index("## ser_x_fold1"):text.index("## ser_x_fold2")]
    assert "|dataset|Snt|WA|UA|macro F1|WER|CER|" in ser1.splitlines()
    assert "|decode_d/fold1_test|3|66.7|75.0|66.7|28.6|12.0|" in ser1.splitlines()
    assert "Sub" not in ser1 and "WW" not in ser1  # no emotion-token tables for SER scores
    assert ("|dataset|folds|Snt|WA|UA|macro F1|WER|CER|WA mean ± std|UA mean ± std|"
            in lines)
    assert "|decode_d/cv_test|2|8|50.0|58.3|55.8|38.5|26.3|53.3 ± 18.9|58.3 ± 23.6|" in lines
    # the emotion-token experiments keep their tables
    asr1 = text[text.index("## asr_x_fold1"):text.index("## asr_x_fold2")]
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" in asr1
    assert "|dataset|WA|UA|ang|hap|" in asr1
