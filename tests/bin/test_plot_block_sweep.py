"""python -m espnet_ser.bin.plot_block_sweep: the GST paper's Figure 3 (fabricated score files)."""

import json

import pytest

from espnet_ser.bin import plot_block_sweep
from tests.scoring.test_block_sweep import BASE, cv_scores, make_sweep


def test_sweep_table_json_and_png_per_block(tmp_path):
    make_sweep(tmp_path)
    cv_scores(tmp_path, f"{BASE}_pretrained_emoend", ww=15.0, uw=14.5, ww_no_emo=14.0, wa=80.0, ua=81.0)
    cv_scores(tmp_path, f"{BASE}_pretrained_emofront", ww=99.0, wa=1.0)  # not a block run
    cv_scores(tmp_path, f"{BASE}_ctc0.7_pretrained_emoend", ww=99.0, wa=1.0)
    plot_block_sweep.main(["--recipe_dir", str(tmp_path), "--base", BASE])

    out = tmp_path / "exp" / f"{BASE}_block_sweep_pretrained_emoend" / "decode_decode"
    summary = json.loads((out / "block_sweep.json").read_text())
    assert list(summary["blocks"]) == ["0", "1", "2", "11"]
    assert summary["blocks"]["11"] == dict(num_utts=100, ww=14.5, uw=13.5, ww_no_emo=12.5, wa=81.0, ua=82.0)
    assert summary["all_blocks"]["ww"] == 15.0 and summary["all_blocks"]["ua"] == 81.0
    md = (out / "block_sweep.md").read_text()
    assert "|block|paper block|Snt|WW|UW|WW no-emo|WA|UA|" in md
    assert "|0|1|100|20.0|19.0|18.0|70.0|71.0|" in md
    assert "|11|12|100|14.5|13.5|12.5|81.0|82.0|" in md
    assert "|all|all|100|15.0|14.5|14.0|80.0|81.0|" in md
    assert "99.0" not in md
    png = (out / "block_sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_blocks_scored_on_different_folds_are_refused_naming_the_files(tmp_path):
    make_sweep(tmp_path, blocks=(0,))
    cv_scores(tmp_path, f"{BASE}_block1_pretrained_emoend", num_utts=60, ww=1.0, wa=1.0)
    with pytest.raises(SystemExit, match=r"block1_pretrained_emoend_cv/.*scores 60 utterances but .*"
                                         r"block0_pretrained_emoend_cv/.* scores 100"):
        plot_block_sweep.main(["--recipe_dir", str(tmp_path), "--base", BASE])


def test_no_block_run_is_an_error_naming_what_is_looked_for(tmp_path):
    cv_scores(tmp_path, f"{BASE}_pretrained_emoend", ww=15.0, wa=80.0)
    with pytest.raises(SystemExit, match=f"no {BASE}_block<k>_<tag>_cv/decode_"):
        plot_block_sweep.main(["--recipe_dir", str(tmp_path), "--base", BASE])


def test_explicit_score_files(tmp_path):
    a = cv_scores(tmp_path, "a", ww=10.0, ua=60.0)
    b = cv_scores(tmp_path, "b", ww=12.0, ua=58.0)
    out = tmp_path / "fig"
    plot_block_sweep.main(["--outdir", str(out), "--blocks", "4 7", str(a), str(b)])
    assert json.loads((out / "block_sweep.json").read_text())["blocks"]["7"]["ww"] == 12.0
    assert (out / "block_sweep.png").is_file()
    with pytest.raises(SystemExit):
        plot_block_sweep.main(["--outdir", str(out), "--blocks", "4", str(a), str(b)])
