"""benchmark_personality builds both models at the published HuBERT-base size and reports the
fusion's parameters and step times (tiny settings: the figures themselves are not checked)."""

import json
from pathlib import Path

from espnet_ser.bin import benchmark_personality

TUNING = Path(__file__).resolve().parents[2] / "egs/pa_iemocap/conf/tuning"


def test_reports_both_models(capsys):
    benchmark_personality.main([
        "--base_config", str(TUNING / "train_ser_hubert_row0.yaml"),
        "--fusion_config", str(TUNING / "train_ser_hubert_row12.yaml"),
        "--batch", "1", "--utt_seconds", "0.3", "--text_chars", "3", "--rounds", "1",
        "--threads", "1"])
    printed = capsys.readouterr().out  # ESPnet may print a notice first
    out = json.loads(printed[printed.index("{"):])
    h = 768
    mha = 4 * h * h + 4 * h  # in-projections of q, k, v and the output projection, with biases
    # row 12: both projections, both interaction MHAs, two fusion MHAs (sequential)
    assert out["params"]["fusion_module"] == 2 * (5 * h + h) + 4 * mha
    assert out["params"]["fusion"] - out["params"]["base"] == out["params"]["fusion_module"]
    assert 90e6 < out["params"]["base"] < 100e6
    assert set(out["step_seconds"]) == {"base", "fusion"} and out["step_seconds"]["base"] > 0
