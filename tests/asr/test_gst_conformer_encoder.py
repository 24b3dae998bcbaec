"""GSTConformerEncoder: equivalence with ESPnet's ConformerEncoder and style conditioning."""

import pytest
import torch

from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.torch_utils.initialize import initialize
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

from espnet_ser.asr.encoder.gst_conformer_encoder import (
    GSTConformerEncoder,
    StyleFFN,
    conditioned_layer_forward,
)

IN = 20
D = 32
S = 8
CFG = dict(
    output_size=D,
    attention_heads=4,
    linear_units=64,
    num_blocks=3,
    macaron_style=True,
    rel_pos_type="latest",
    pos_enc_layer_type="rel_pos",
    selfattention_layer_type="rel_selfattn",
    use_cnn_module=True,
    cnn_module_kernel=7,
    input_layer="conv2d",
)
FFN_KEYS = ("w_1.weight", "w_1.bias", "w_2.weight", "w_2.bias")

VARIANTS = {
    "macaron_prenorm": {},
    "no_macaron": dict(macaron_style=False),
    "postnorm": dict(normalize_before=False),
    "postnorm_no_macaron": dict(normalize_before=False, macaron_style=False),
    "legacy_relpos_concat_after": dict(rel_pos_type="legacy", concat_after=True),
    "abs_pos_linear_no_cnn": dict(
        pos_enc_layer_type="abs_pos",
        selfattention_layer_type="selfattn",
        input_layer="linear",
        use_cnn_module=False,
    ),
}


def make_pair(seed=0, style_kwargs=None, **overrides):
    """An ESPnet ConformerEncoder and a GSTConformerEncoder holding its parameters."""
    cfg = {**CFG, **overrides}
    torch.manual_seed(seed)
    ref = ConformerEncoder(IN, **cfg)
    gst = GSTConformerEncoder(IN, style_dim=S, **cfg, **(style_kwargs or {}))
    gst.load_state_dict(ref.state_dict(), strict=False)
    return ref, gst


def inputs(batch=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 40, IN, generator=g)
    ilens = torch.tensor([40, 27, 13, 33, 21][:batch])
    style = torch.randn(batch, S, generator=g)
    return x, ilens, style


def style_ffns(enc):
    return [m for m in enc.modules() if isinstance(m, StyleFFN)]


def perturb(enc, seed=5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in style_ffns(enc):
            m.w_2.weight.copy_(torch.randn(m.w_2.weight.shape, generator=g) * 0.5)
            m.w_2.bias.copy_(torch.randn(m.w_2.bias.shape, generator=g) * 0.5)


def embed(enc, x, ilens):
    """Embedded input (x or (x, pos_emb)) and mask, as the encoders compute them."""
    masks = ~make_pad_mask(ilens)[:, None, :]
    if isinstance(enc.embed, torch.nn.Sequential):
        return enc.embed(x), masks
    return enc.embed(x, masks)


# ---------------------------------------------------------------- 1 / 6: equivalence


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("ffn", ["shared", "per_block"])
def test_zero_init_equals_espnet(variant, ffn):
    ref, gst = make_pair(style_kwargs=dict(style_ffn=ffn), **VARIANTS[variant])
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        want, want_lens, _ = ref(x, ilens)
        for s in (None, style):
            got, got_lens, states = gst(x, ilens, style=s)
            assert states is None
            assert torch.equal(got, want)
            assert torch.equal(got_lens, want_lens)


def test_state_dict_names():
    ref = ConformerEncoder(IN, **CFG)
    shared = GSTConformerEncoder(IN, style_dim=S, **CFG)
    res = shared.load_state_dict(ref.state_dict(), strict=False)
    assert set(res.missing_keys) == {f"style_ffn.{k}" for k in FFN_KEYS}
    assert res.unexpected_keys == []

    per = GSTConformerEncoder(IN, style_dim=S, cond_layers=[2, 0], style_ffn="per_block", **CFG)
    res = per.load_state_dict(ref.state_dict(), strict=False)
    assert set(res.missing_keys) == {f"style_ffns.{i}.{k}" for i in (0, 2) for k in FFN_KEYS}
    assert res.unexpected_keys == []
    # every conformer parameter keeps ESPnet's name
    non_style = {k for k in per.state_dict() if not k.startswith("style_ffn")}
    assert non_style == set(ref.state_dict())


def test_last_layer_starts_at_zero():
    for enc in (
        GSTConformerEncoder(IN, style_dim=S, **CFG),
        GSTConformerEncoder(IN, style_dim=S, style_ffn="per_block", **CFG),
    ):
        for m in style_ffns(enc):
            assert torch.count_nonzero(m.w_2.weight) == 0
            assert torch.count_nonzero(m.w_2.bias) == 0
            assert torch.count_nonzero(m.w_1.weight) > 0


def test_external_padding_mask_and_return_all_hs():
    ref, gst = make_pair()
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    pad = make_pad_mask(ilens)
    with torch.no_grad():
        (want, want_hs), want_lens, _ = ref(x, ilens, masks=pad, return_all_hs=True)
        (got, got_hs), got_lens, _ = gst(x, ilens, style=style, masks=pad, return_all_hs=True)
    assert torch.equal(got, want) and torch.equal(got_lens, want_lens)
    assert len(got_hs) == len(want_hs) == CFG["num_blocks"]
    assert all(torch.equal(a, b) for a, b in zip(got_hs, want_hs))


def test_too_short_input_raises():
    _, gst = make_pair()
    with pytest.raises(TooShortUttError):
        gst(torch.randn(1, 6, IN), torch.tensor([6]), style=torch.randn(1, S))


# ---------------------------------------------------------------- 2: conditioning


@pytest.mark.parametrize("ffn", ["shared", "per_block"])
def test_style_changes_output(ffn):
    _, gst = make_pair(style_kwargs=dict(style_ffn=ffn))
    perturb(gst)
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        plain = gst(x, ilens)[0]
        a = gst(x, ilens, style=style)[0]
        b = gst(x, ilens, style=style.roll(1, 0))[0]
    assert not torch.allclose(a, plain)
    assert not torch.allclose(a, b)
    # each utterance only depends on its own style
    other = style.clone()
    other[1] = style[2]
    with torch.no_grad():
        c = gst(x, ilens, style=other)[0]
    assert torch.equal(c[0], a[0]) and torch.equal(c[2], a[2])
    assert not torch.allclose(c[1], a[1])


def test_only_conditioned_blocks_are_affected():
    ref, gst = make_pair(style_kwargs=dict(cond_layers=[1]))
    perturb(gst)
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        _, ref_hs = ref(x, ilens, return_all_hs=True)[0]
        _, hs = gst(x, ilens, style=style, return_all_hs=True)[0]
        _, plain_hs = gst(x, ilens, return_all_hs=True)[0]
    assert torch.equal(hs[0], ref_hs[0])
    assert not torch.allclose(hs[1], ref_hs[1])
    assert not torch.allclose(hs[2], ref_hs[2])
    assert all(torch.equal(a, b) for a, b in zip(plain_hs, ref_hs))


def test_conditioned_block_by_hand():
    """Block 1 (pre-norm, macaron) written out: style added after the macaron residual."""
    ref, gst = make_pair(style_kwargs=dict(cond_layers=[1]))
    perturb(gst)
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        _, hs = gst(x, ilens, style=style, return_all_hs=True)[0]
        (h0, pos_emb), mask = embed(ref, x, ilens)
        (h0, _), mask = ref.encoders[0]((h0, pos_emb), mask)
        layer = ref.encoders[1]
        s = gst.style_ffn.w_2(gst.style_ffn.activation(gst.style_ffn.w_1(style)))[:, None, :]
        h = h0 + 0.5 * layer.feed_forward_macaron(layer.norm_ff_macaron(h0))
        h = h + s
        n = layer.norm_mha(h)
        h = h + layer.self_attn(n, n, n, pos_emb, mask)
        h = h + layer.conv_module(layer.norm_conv(h))
        h = h + 0.5 * layer.feed_forward(layer.norm_ff(h))
        h = layer.norm_final(h)
    assert torch.allclose(hs[1], h, atol=1e-5)
    assert not torch.allclose(hs[1], ref.encoders[1]((h0, pos_emb), mask)[0][0], atol=1e-3)


class _Shifted(torch.nn.Module):
    """Wraps a module and adds a fixed tensor to its output."""

    def __init__(self, inner, shift):
        super().__init__()
        self.inner = inner
        self.shift = shift

    def forward(self, x):
        return self.inner(x) + self.shift


@pytest.mark.parametrize("variant", ["macaron_prenorm", "no_macaron", "postnorm", "postnorm_no_macaron"])
def test_conditioned_block_matches_espnet_layer_with_shift(variant):
    """The style term equals a shift ESPnet's own layer forward can express.

    pre-norm macaron: macaron FFN output + s / ff_scale; post-norm macaron:
    norm_ff_macaron output + s; no macaron: layer input + s.
    """
    ref, _ = make_pair(**VARIANTS[variant])
    ref.eval()
    x, ilens, style = inputs()
    layer = ref.encoders[1]
    torch.manual_seed(3)
    s = torch.randn(x.size(0), 1, D)
    with torch.no_grad():
        (h0, pos_emb), mask = embed(ref, x, ilens)
        (got, _), _ = conditioned_layer_forward(layer, (h0, pos_emb), mask, s)
        (plain, _), _ = conditioned_layer_forward(layer, (h0, pos_emb), mask, torch.zeros_like(s))
        assert torch.equal(plain, layer((h0, pos_emb), mask)[0][0])
        if layer.feed_forward_macaron is None:
            (want, _), _ = layer((h0 + s, pos_emb), mask)
        elif layer.normalize_before:
            layer.feed_forward_macaron = _Shifted(layer.feed_forward_macaron, s / layer.ff_scale)
            (want, _), _ = layer((h0, pos_emb), mask)
        else:
            layer.norm_ff_macaron = _Shifted(layer.norm_ff_macaron, s)
            (want, _), _ = layer((h0, pos_emb), mask)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-3)


def test_conditioned_block_without_pos_emb_tuple():
    ref, gst = make_pair(**VARIANTS["abs_pos_linear_no_cnn"])
    ref.eval()
    x, ilens, _ = inputs()
    layer = ref.encoders[0]
    s = torch.randn(x.size(0), 1, D)
    with torch.no_grad():
        h0, mask = embed(ref, x, ilens)
        assert not isinstance(h0, tuple)
        got, _ = conditioned_layer_forward(layer, h0, mask, s)
        layer.feed_forward_macaron = _Shifted(layer.feed_forward_macaron, s / layer.ff_scale)
        want, _ = layer(h0, mask)
    assert torch.allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------- 3: config, shapes, grads


def test_shared_vs_per_block_parameter_counts():
    def n_style(enc):
        return sum(p.numel() for n, p in enc.named_parameters() if n.startswith("style_ffn"))

    one = S * D + D + D * D + D  # style_dim -> hidden (= output_size) -> output_size
    shared = GSTConformerEncoder(IN, style_dim=S, cond_layers=[0, 2], **CFG)
    per = GSTConformerEncoder(IN, style_dim=S, cond_layers=[0, 2], style_ffn="per_block", **CFG)
    per_all = GSTConformerEncoder(IN, style_dim=S, style_ffn="per_block", **CFG)
    assert n_style(shared) == one
    assert n_style(per) == 2 * one
    assert n_style(per_all) == 3 * one
    assert len(style_ffns(per)) == 2 and sorted(per.style_ffns.keys()) == ["0", "2"]
    hid = GSTConformerEncoder(IN, style_dim=S, style_hidden_units=16, **CFG)
    assert n_style(hid) == S * 16 + 16 + 16 * D + D
    assert shared.cond_layers == [0, 2]
    assert GSTConformerEncoder(IN, style_dim=S, **CFG).cond_layers == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cond_layers=[3]), "out of range"),
        (dict(cond_layers=[-1]), "out of range"),
        (dict(cond_layers=[0, 1, 1]), "duplicate"),
        (dict(cond_layers=[]), "empty"),
        (dict(style_dim=0), "style_dim"),
        (dict(style_ffn="per_layer"), "style_ffn"),
        (dict(style_hidden_units=0), "style_hidden_units"),
        (dict(style_activation="nope"), "style_activation"),
        (dict(ctc_trim=True), "ctc_trim"),
    ],
)
def test_invalid_config(kwargs, match):
    kw = {"style_dim": S, **CFG, **kwargs}
    with pytest.raises(ValueError, match=match):
        GSTConformerEncoder(IN, **kw)


def test_style_dim_is_required():
    with pytest.raises(TypeError):
        GSTConformerEncoder(IN, **CFG)


@pytest.mark.parametrize(
    "shape, match",
    [((3, S + 1), "style_dim"), ((3,), "2-D"), ((3, 1, S), "2-D"), ((2, S), "batch")],
)
def test_wrong_style_shape(shape, match):
    _, gst = make_pair()
    x, ilens, _ = inputs()
    with pytest.raises(ValueError, match=match):
        gst(x, ilens, style=torch.randn(*shape))


@pytest.mark.parametrize("ffn", ["shared", "per_block"])
def test_gradients_reach_style_ffn(ffn):
    _, gst = make_pair(style_kwargs=dict(style_ffn=ffn, cond_layers=[0, 2]))
    gst.eval()
    x, ilens, style = inputs()
    style.requires_grad_(True)

    out = gst(x, ilens, style=style)[0]
    out.pow(2).sum().backward()
    for m in style_ffns(gst):
        assert m.w_2.weight.grad.abs().sum() > 0
        assert m.w_2.bias.grad.abs().sum() > 0
        # zero last layer: nothing flows further back yet
        assert torch.count_nonzero(m.w_1.weight.grad) == 0
    assert torch.count_nonzero(style.grad) == 0

    gst.zero_grad()
    style.grad = None
    perturb(gst)
    out = gst(x, ilens, style=style)[0]
    out.pow(2).sum().backward()
    for m in style_ffns(gst):
        assert m.w_1.weight.grad.abs().sum() > 0
        assert m.w_1.bias.grad.abs().sum() > 0
    assert style.grad.abs().sum() > 0


# ---------------------------------------------------------------- 4: ESPnet initialisation


@pytest.mark.parametrize("init", ["xavier_uniform", "chainer"])
@pytest.mark.parametrize("ffn", ["shared", "per_block"])
def test_initialize_rezeroes_last_layer(init, ffn):
    gst = GSTConformerEncoder(IN, style_dim=S, style_ffn=ffn, **CFG)
    perturb(gst)
    initialize(gst, init)
    for m in style_ffns(gst):
        assert torch.count_nonzero(m.w_2.weight) == 0
        assert torch.count_nonzero(m.w_2.bias) == 0
        assert torch.count_nonzero(m.w_1.weight) > 0

    ref = ConformerEncoder(IN, **CFG)
    res = ref.load_state_dict(gst.state_dict(), strict=False)
    assert res.missing_keys == []
    assert res.unexpected_keys and all(k.startswith("style_ffn") for k in res.unexpected_keys)
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        want = ref(x, ilens)[0]
        assert torch.equal(gst(x, ilens, style=style)[0], want)
        assert torch.equal(gst(x, ilens)[0], want)


# ---------------------------------------------------------------- 5: training mode


def test_training_mode_matches_espnet_with_same_rng():
    """Dropout and stochastic depth draw the same random numbers as ESPnet's encoder."""
    over = dict(dropout_rate=0.2, stochastic_depth_rate=[0.0, 0.5, 0.5])
    ref, gst = make_pair(**over)
    ref.train()
    gst.train()
    x, ilens, style = inputs()
    for seed in range(4):
        torch.manual_seed(seed)
        want = ref(x, ilens)[0]
        torch.manual_seed(seed)
        got = gst(x, ilens, style=style)[0]
        assert torch.equal(got, want)


def test_training_mode_backprop():
    over = dict(dropout_rate=0.2, attention_dropout_rate=0.1, stochastic_depth_rate=0.2)
    _, gst = make_pair(style_kwargs=dict(style_ffn="per_block"), **over)
    perturb(gst)
    gst.train()
    x, ilens, style = inputs()
    torch.manual_seed(0)
    out, olens, _ = gst(x, ilens, style=style)
    assert out.shape == (3, olens.max().item(), D)
    out.mean().backward()
    grads = [p.grad for p in gst.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert gst.embed.conv[0].weight.grad.abs().sum() > 0
    assert any(
        m.w_1.weight.grad is not None and m.w_1.weight.grad.abs().sum() > 0
        for m in style_ffns(gst)
    )
    # dropout is active: two passes differ
    with torch.no_grad():
        assert not torch.equal(gst(x, ilens, style=style)[0], gst(x, ilens, style=style)[0])


# ---------------------------------------------------------------- intermediate CTC


def test_interctc_matches_espnet():
    over = dict(interctc_layer_idx=[1, 2], interctc_use_conditioning=True)
    ref, gst = make_pair(**over)
    vocab = 7
    torch.manual_seed(2)
    cond = torch.nn.Linear(vocab, D)
    ref.conditioning_layer = cond
    gst.conditioning_layer = cond
    ctc = CTC(odim=vocab, encoder_output_size=D)
    ref.eval()
    gst.eval()
    x, ilens, style = inputs()
    with torch.no_grad():
        (want, want_inter), want_lens, _ = ref(x, ilens, ctc=ctc)
        (got, got_inter), got_lens, _ = gst(x, ilens, style=style, ctc=ctc)
        perturb(gst)
        (styled, styled_inter), _, _ = gst(x, ilens, style=style, ctc=ctc)
    assert torch.equal(got, want) and torch.equal(got_lens, want_lens)
    assert [i for i, _ in got_inter] == [i for i, _ in want_inter] == [1, 2]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got_inter, want_inter))
    assert not torch.allclose(styled_inter[0][1], want_inter[0][1])
