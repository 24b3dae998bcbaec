"""The GST paper's Figure 3 from the block runs' cross-fold scores (fabricated score files)."""

import json

import pytest

from espnet_ser.bin import plot_block_sweep
from espnet_ser.scoring.block_sweep import find_block_sweeps

BASE = "asr_train_asr_ser_conformer_ptgst"


def cv_scores(recipe, name, decode="decode_decode", **values):
    """exp/<name>_cv/<decode>/cv_test/score/scores.json with the given metrics."""
    d = recipe / "exp" / f"{name}_cv" / decode / "cv_test" / "score"
    d.mkdir(parents=True)
    scores = dict(num_utts=100, wer=values.get("ww"), ww_no_emo=None, uw=None, wa=None, ua=None)
    scores.update(values)
    (d / "scores.json").write_text(json.dumps(scores))
    return d / "scores.json"


def make_sweep(recipe, blocks=(0, 1, 2, 11), tag="pretrained_emoend"):
    for k in blocks:
        cv_scores(recipe, f"{BASE}_block{k}_{tag}", ww=20.0 - k / 2, uw=19.0 - k / 2,
                  ww_no_emo=18.0 - k / 2, wa=70.0 + k, ua=71.0 + k)


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


def test_sweeps_are_grouped_by_token_tag_and_decoding(tmp_path):
    make_sweep(tmp_path, blocks=(0, 1))
    make_sweep(tmp_path, blocks=(3,), tag="bpe5000_emoend")
    cv_scores(tmp_path, f"{BASE}_block0_pretrained_emoend", decode="decode_beam2", ww=1.0, wa=1.0)
    groups = find_block_sweeps(tmp_path, BASE)
    assert sorted(groups) == [("bpe5000_emoend", "decode_decode"), ("pretrained_emoend", "decode_beam2"),
                              ("pretrained_emoend", "decode_decode")]
    assert sorted(groups[("pretrained_emoend", "decode_decode")]) == [0, 1]


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
