"""SERTask with a self-supervised encoder over raw waveforms (encoder: ssl)."""

import pytest
import torch

from espnet_ser.ssl.encoder import SSLEncoder
from espnet_ser.tasks.ser import SERTask

TINY_W2V2 = dict(model_type="wav2vec2", hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, conv_dim=[16, 16],
                 conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=2, feat_extract_norm="layer")


def test_ssl_encoder_with_weighted_layers_and_ctc(tmp_path):
    chars = ["<blank>", "<unk>", "<space>", "a", "b", "<sos/eos>"]
    args = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "neu", "sad", "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY_W2V2, layer="weighted", freeze="feature_encoder")
    args.token_list = chars
    args.model_conf = dict(ctc_weight=0.1)
    torch.manual_seed(0)
    model = SERTask.build_model(args)
    assert isinstance(model.encoder, SSLEncoder)
    wave = torch.randn(2, 8000)
    lengths = torch.tensor([8000, 6000])
    loss, stats, weight = model(wave, lengths, torch.tensor([[1], [3]]), torch.tensor([1, 1]),
                                text=torch.tensor([[3, 2, 4], [4, 4, -1]]), text_lengths=torch.tensor([3, 2]))
    assert torch.isfinite(loss) and int(weight) == 2 and "loss_ctc" in stats
    loss.backward()
    # the layer weights learn; the frozen convolutional feature encoder does not
    assert model.encoder.layer_weights.grad is not None
    conv = [p for n, p in model.encoder.named_parameters() if "feature_extractor" in n]
    assert conv and all(p.grad is None for p in conv)
    posterior, ids = model.predict(wave, lengths)
    assert posterior.shape == (2, 4) and torch.allclose(posterior.sum(-1), torch.ones(2))
    assert ids is not None and len(ids) == 2


def test_head_config_for_another_hidden_size_is_refused():
    args = SERTask.get_parser().parse_args(
        ["--emotions", "ang", "hap", "--input_size", "1", "--normalize", "none",
         "--encoder", "ssl", "--pooling", "mean", "--classifier", "linear"])
    args.encoder_conf = dict(model_config=TINY_W2V2, freeze="all")
    args.pooling_conf = dict(input_size=768)  # written for a base-size checkpoint
    with pytest.raises(ValueError, match=r"pooling_conf.input_size is 768.*model_config=.*32-dim"):
        SERTask.build_model(args)
    args.pooling_conf = dict(input_size=32)  # the matching size is accepted
    model = SERTask.build_model(args)
    assert model.pooling.output_size() == 32
