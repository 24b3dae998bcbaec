"""The GST cost benchmark runs both models on the same work and reports their ratio."""

import json

from espnet_ser.bin import benchmark_gst

BASE = """
model: asr_ser
encoder: conformer
encoder_conf: {output_size: 16, attention_heads: 2, linear_units: 32, num_blocks: 1,
               macaron_style: true, cnn_module_kernel: 3}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 32, num_blocks: 1}
"""
GST = BASE.replace("encoder: conformer", "encoder: gst_conformer") + """
style_encoder: gst
style_encoder_conf: {conv_channels: [4, 4], ref_dim: 8, n_tokens: 3, n_heads: 2, style_dim: 8}
"""


def test_reports_both_models_and_ratios(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "gst.yaml").write_text(GST)
    benchmark_gst.main(["--base_config", str(tmp_path / "base.yaml"), "--gst_config",
                        str(tmp_path / "gst.yaml"), "--vocab", "20", "--batch", "2",
                        "--utt_seconds", "1.0", "--train_rounds", "2", "--decode_rounds", "1",
                        "--beam_size", "2", "--hyp_tokens", "4"])
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report["params"]["gst"] > report["params"]["base"]
    for key in ("train_step_seconds", "decode_seconds_per_utt"):
        assert set(report[key]) == {"base", "gst"} and all(v > 0 for v in report[key].values())
    t = report["train_step_seconds"]
    assert report["train_ratio"] == t["gst"] / t["base"]
