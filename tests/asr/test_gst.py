"""Tests for espnet_ser.asr.gst.GSTEncoder (Global Style Tokens)."""

import math

import pytest
import torch
import yaml

from espnet_ser.asr.gst import GSTEncoder, conv_output_length

TINY = dict(n_mels=20, conv_channels=[4, 6, 8], ref_dim=10, n_tokens=5, n_heads=2, style_dim=12)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BatchNorm statistics, so that eval mode is not an identity BN."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return model


def reference_attention(query, embed, w_query, w_key, w_value, n_heads):
    """Style-token attention from the description, with plain tensor ops.

    query (B, ref_dim); embed (N, token_dim); w_* are Linear weights (out, in).
    The heads are the consecutive chunks of the projections; scores are scaled by the
    token dimension; the heads are concatenated in order.
    """
    token_dim = embed.shape[1]
    keys = torch.tanh(embed)
    q = query @ w_query.t()  # (B, style_dim)
    k = keys @ w_key.t()  # (N, style_dim)
    v = keys @ w_value.t()
    outs, weights = [], []
    heads = zip(q.chunk(n_heads, dim=1), k.chunk(n_heads, dim=1), v.chunk(n_heads, dim=1))
    for qh, kh, vh in heads:
        scores = (qh @ kh.t()) / token_dim**0.5  # (B, N)
        w = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
        w = w / w.sum(dim=1, keepdim=True)
        outs.append(w @ vh)
        weights.append(w)
    return torch.cat(outs, dim=1), torch.stack(weights, dim=1)


# --------------------------------------------------------------------------------------
def test_default_shapes_and_output_size():
    model = GSTEncoder().eval()
    assert model.output_size() == 256
    feats = torch.randn(3, 120, 80)
    style = model(feats)
    assert style.shape == (3, 256)
    style2, weights = model(feats, return_weights=True)
    assert torch.allclose(style, style2)
    assert weights.shape == (3, 8, 10)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 8), atol=1e-6)
    assert (weights >= 0).all()


def test_default_parameter_layout():
    model = GSTEncoder()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    channels = [1, 32, 32, 64, 64, 128, 128]
    for i in range(6):
        assert shapes[f"reference_encoder.convs.{i}.weight"] == (channels[i + 1], channels[i], 3, 3)
        assert shapes[f"reference_encoder.bns.{i}.running_var"] == (channels[i + 1],)
        assert shapes[f"reference_encoder.bns.{i}.num_batches_tracked"] == ()
    # 80 mels -> 40 -> 20 -> 10 -> 5 -> 3 -> 2 frequency bins, 128 channels each
    assert shapes["reference_encoder.gru.weight_ih_l0"] == (3 * 128, 128 * 2)
    assert shapes["reference_encoder.gru.weight_hh_l0"] == (3 * 128, 128)
    assert shapes["style_tokens.embed"] == (10, 32)
    assert shapes["style_tokens.query_proj.weight"] == (256, 128)
    assert shapes["style_tokens.key_proj.weight"] == (256, 32)
    assert shapes["style_tokens.value_proj.weight"] == (256, 32)
    assert not any(k.endswith("proj.bias") for k in shapes)


def test_parameter_count_matches_paper():
    n_params = sum(p.numel() for p in GSTEncoder().parameters())
    assert 470_000 <= n_params <= 500_000, n_params


def test_token_embedding_init():
    torch.manual_seed(0)
    embed = GSTEncoder(n_tokens=200, style_dim=512, n_heads=8).style_tokens.embed
    assert embed.shape == (200, 64)
    assert abs(embed.std().item() - 0.5) < 0.03
    assert abs(embed.mean().item()) < 0.03


def test_conv_output_length():
    assert [conv_output_length(n) for n in (1, 2, 3, 4, 5, 80)] == [1, 1, 2, 2, 3, 40]
    lengths = torch.tensor([1, 2, 3, 64, 65])
    assert conv_output_length(lengths).tolist() == [1, 1, 2, 32, 33]


@pytest.mark.parametrize("conf", [{}, TINY], ids=["default", "tiny"])
def test_padded_batch_matches_single_utterances(conf):
    torch.manual_seed(0)
    model = randomize(GSTEncoder(**conf)).eval()
    n_mels = model.n_mels
    long_len, short_len = 150, 37
    long = torch.randn(long_len, n_mels)
    short = torch.randn(short_len, n_mels)
    batch = torch.full((2, long_len, n_mels), 5.0)  # padding that would leak if not masked
    batch[0] = long
    batch[1, :short_len] = short
    lengths = torch.tensor([long_len, short_len])
    with torch.no_grad():
        style_batch, w_batch = model(batch, lengths, return_weights=True)
        style_long, w_long = model(long[None], return_weights=True)
        style_short, w_short = model(short[None], return_weights=True)
        # the same utterance read without lengths sees the padding: it must differ
        unmasked = model(batch)[1]
    assert torch.allclose(style_batch[0], style_long[0], atol=1e-5)
    assert torch.allclose(style_batch[1], style_short[0], atol=1e-5)
    assert torch.allclose(w_batch[1], w_short[0], atol=1e-5)
    assert not torch.allclose(unmasked, style_short[0], atol=1e-3)


def test_padded_batch_shuffled_order_and_full_lengths():
    torch.manual_seed(1)
    model = randomize(GSTEncoder(**TINY), seed=1).eval()
    lens = [9, 40, 1, 23]
    utts = [torch.randn(n, 20) for n in lens]
    batch = torch.randn(len(lens), max(lens), 20) * 10  # garbage padding
    for i, u in enumerate(utts):
        batch[i, : len(u)] = u
    with torch.no_grad():
        out = model(batch, torch.tensor(lens))
        alone = torch.cat([model(u[None]) for u in utts])
        full = torch.full((len(lens),), max(lens))
        # all lengths full: exactly the result without lengths
        assert torch.equal(model(batch, full), model(batch))
    assert torch.allclose(out, alone, atol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 5, 63])
def test_short_utterances(length):
    torch.manual_seed(2)
    model = randomize(GSTEncoder(), seed=2).eval()
    short = torch.randn(1, length, 80)
    with torch.no_grad():
        alone = model(short)
        batch = torch.zeros(2, 100, 80)
        batch[0, :length] = short[0]
        batch[1] = torch.randn(100, 80)
        in_batch = model(batch, torch.tensor([length, 100]))
    assert alone.shape == (1, 256)
    assert torch.isfinite(alone).all()
    assert torch.allclose(in_batch[0], alone[0], atol=1e-5)


def test_zero_length_is_clamped():
    model = GSTEncoder(**TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 8, 20), torch.tensor([0, 8]))
    assert torch.isfinite(out).all()


def test_tiny_config_from_yaml():
    conf = yaml.safe_load(
        "n_mels: 20\nconv_channels: [4, 6, 8]\nref_dim: 10\nn_tokens: 5\nn_heads: 2\n"
        "style_dim: 12\n"
    )
    model = GSTEncoder(**conf)
    assert model.output_size() == 12
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len([k for k in shapes if k.endswith(".weight") and ".convs." in k]) == 3
    # 20 mels -> 10 -> 5 -> 3 bins of 8 channels
    assert shapes["reference_encoder.gru.weight_ih_l0"] == (30, 24)
    assert shapes["style_tokens.embed"] == (5, 6)
    lengths = torch.tensor([17, 3, 10, 1])
    style, weights = model(torch.randn(4, 17, 20), lengths, return_weights=True)
    assert style.shape == (4, 12)
    assert weights.shape == (4, 2, 5)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = GSTEncoder(**TINY).train()
    feats = torch.randn(3, 30, 20)
    style = model(feats, torch.tensor([30, 12, 4]))
    (style * torch.randn_like(style)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "conf",
    [
        {},
        dict(TINY),
        # token dimension different from the head dimension (12 / 2 = 6): scaling by 4
        dict(TINY, token_dim=4),
    ],
    ids=["default", "tiny", "token_dim"],
)
def test_style_token_attention_matches_reference(conf):
    torch.manual_seed(4)
    model = randomize(GSTEncoder(**conf), seed=4).eval()
    stl = model.style_tokens
    query = torch.randn(5, model.ref_dim) * 3
    with torch.no_grad():
        style, weights = stl(query)
        ref_style, ref_weights = reference_attention(
            query,
            stl.embed,
            stl.query_proj.weight,
            stl.key_proj.weight,
            stl.value_proj.weight,
            model.n_heads,
        )
    assert style.shape == (5, model.style_dim)
    assert torch.allclose(weights, ref_weights, atol=1e-5)
    assert torch.allclose(style, ref_style, atol=1e-5)
    if "token_dim" in conf:
        assert stl.embed.shape[1] == 4
        # scaling by the head dimension instead gives different weights
        _, wrong = reference_attention(
            query * math.sqrt(4 / 6),
            stl.embed,
            stl.query_proj.weight,
            stl.key_proj.weight,
            stl.value_proj.weight,
            model.n_heads,
        )
        assert not torch.allclose(weights, wrong, atol=1e-3)


def test_forward_uses_gru_final_state_as_query():
    torch.manual_seed(5)
    model = randomize(GSTEncoder(**TINY), seed=5).eval()
    feats = torch.randn(2, 25, 20)
    with torch.no_grad():
        query = model.reference_encoder(feats)
        expected, _ = model.style_tokens(query)
        assert query.shape == (2, 10)
        assert torch.allclose(model(feats), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(style_dim=250, n_heads=8), "divisible"),
        (dict(conv_channels=[]), "at least one"),
        (dict(conv_channels=[32, 0]), "conv_channels"),
        (dict(conv_channels="32"), "list"),
        (dict(n_mels=0), "n_mels"),
        (dict(ref_dim=-1), "ref_dim"),
        (dict(n_tokens=0), "n_tokens"),
        (dict(n_heads=0), "n_heads"),
        (dict(token_dim=0), "token_dim"),
        (dict(style_dim=2.5), "style_dim"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GSTEncoder(**kwargs)


def test_wrong_input_size():
    model = GSTEncoder(**TINY)
    with pytest.raises(ValueError, match=r"\(B, T, 20\)"):
        model(torch.randn(2, 10, 80))
    with pytest.raises(ValueError, match="no frames"):
        model(torch.randn(2, 0, 20))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(6)
    model = randomize(GSTEncoder(**TINY), seed=6).eval()
    feats = torch.randn(2, 30, 20)
    lengths = torch.tensor([30, 11])
    with torch.no_grad():
        cpu = model(feats, lengths)
        gpu = model.cuda()(feats.cuda(), lengths.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)
