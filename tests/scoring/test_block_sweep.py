"""The GST paper's Figure 3 from the block runs' cross-fold scores (fabricated score files)."""

import json

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


def test_sweeps_are_grouped_by_token_tag_and_decoding(tmp_path):
    make_sweep(tmp_path, blocks=(0, 1))
    make_sweep(tmp_path, blocks=(3,), tag="bpe5000_emoend")
    cv_scores(tmp_path, f"{BASE}_block0_pretrained_emoend", decode="decode_beam2", ww=1.0, wa=1.0)
    groups = find_block_sweeps(tmp_path, BASE)
    assert sorted(groups) == [("bpe5000_emoend", "decode_decode"), ("pretrained_emoend", "decode_beam2"),
                              ("pretrained_emoend", "decode_decode")]
    assert sorted(groups[("pretrained_emoend", "decode_decode")]) == [0, 1]
