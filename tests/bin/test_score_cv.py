"""python -m espnet_ser.bin.score_cv: recipe mode and its inputs."""

import json

import pytest

from espnet_ser.bin import score_cv
from espnet_ser.scoring.cv import find_fold_groups
from tests.scoring.test_cv import make_recipe


def test_recipe_mode_groups_experiments_and_tags(tmp_path):
    make_recipe(tmp_path, "asr_x")
    make_recipe(tmp_path, "asr_y", "decode_e")
    groups = find_fold_groups(tmp_path, ["1", "2"])
    assert sorted(str(p.relative_to(tmp_path)) for p in groups) == [
        "exp/asr_x_cv/decode_d/cv_test/score",
        "exp/asr_y_cv/decode_e/cv_test/score",
    ]
    score_cv.main(["--recipe_dir", str(tmp_path), "--folds", "1 2"])
    out = tmp_path / "exp/asr_y_cv/decode_e/cv_test/score/cv_summary.json"
    assert json.loads(out.read_text())["pooled"]["wa"] == pytest.approx(500 / 6)


def test_cli_needs_inputs(tmp_path):
    with pytest.raises(SystemExit):
        score_cv.main([])
