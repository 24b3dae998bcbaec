"""espnet_ser.bin.ssl_layer_weights: the learned layer weights of a trained model file."""

import json

import pytest
import torch

from espnet_ser.bin import ssl_layer_weights
from espnet_ser.tasks.ser import SERTask

TINY = dict(model_type="wav2vec2", hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, conv_dim=[8, 8], conv_kernel=[10, 3], conv_stride=[5, 2],
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)


def save_model(path, layer):
    args = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY, layer=layer, freeze="all")
    model = SERTask.build_model(args)
    if layer == "weighted":
        with torch.no_grad():
            model.encoder.layer_weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
    torch.save(model.state_dict(), path)


def test_prints_plots_and_writes_the_softmax_weights(tmp_path, capsys):
    save_model(tmp_path / "m.pth", "weighted")
    ssl_layer_weights.main(["--model_file", str(tmp_path / "m.pth"), "--png", str(tmp_path / "w.png"),
                            "--json", str(tmp_path / "w.json")])
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0).tolist()
    assert json.loads((tmp_path / "w.json").read_text()) == pytest.approx(expected)
    out = capsys.readouterr().out
    assert f"layer  2: {expected[2]:.4f}" in out and f"layer  0: {expected[0]:.4f}" in out
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_model_without_layer_weights_is_named(tmp_path, capsys):
    save_model(tmp_path / "last.pth", "last")
    with pytest.raises(SystemExit):
        ssl_layer_weights.main(["--model_file", str(tmp_path / "last.pth")])
    assert "last.pth: no encoder.layer_weights" in capsys.readouterr().err
