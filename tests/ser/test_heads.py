"""Poolings over padded frames and classifier shapes."""

import pytest
import torch

from espnet_ser.ser.heads import (
    AttentiveStatsPooling,
    FFNClassifier,
    LinearClassifier,
    classifier_choices,
    pooling_choices,
    valid_mask,
)

# two utterances, D = 2; utterance 1 has 2 valid frames, the third is padding (large values)
XS = torch.tensor([
    [[1.0, -2.0], [3.0, 0.0], [5.0, 4.0]],
    [[2.0, 1.0], [-4.0, 3.0], [100.0, 100.0]],
])
LENS = torch.tensor([3, 2])


def pool(name, **conf):
    return pooling_choices.get_class(name)(input_size=2, **conf)


def test_registry_names():
    assert set(pooling_choices.choices()) >= {"sum", "mean", "mean_max", "attentive_stats"}
    assert set(classifier_choices.choices()) >= {"linear", "ffn"}


def test_valid_mask():
    assert valid_mask(LENS, 3).tolist() == [[True, True, True], [True, True, False]]


def test_sum_ignores_padding():
    p = pool("sum")
    assert p.output_size() == 2
    assert p(XS, LENS).tolist() == [[9.0, 2.0], [-2.0, 4.0]]


def test_mean_ignores_padding():
    p = pool("mean")
    assert p.output_size() == 2
    assert torch.allclose(p(XS, LENS), torch.tensor([[3.0, 2.0 / 3.0], [-1.0, 2.0]]))


def test_mean_max_ignores_padding():
    p = pool("mean_max")
    assert p.output_size() == 4
    expected = torch.tensor([[3.0, 2.0 / 3.0, 5.0, 4.0], [-1.0, 2.0, 2.0, 3.0]])
    assert torch.allclose(p(XS, LENS), expected)
    # all-negative valid frames: padding (zeros) must not win the max
    xs = torch.tensor([[[-1.0, -5.0], [0.0, 0.0]]])
    assert p(xs, torch.tensor([1]))[0, 2:].tolist() == [-1.0, -5.0]


def test_attentive_weights_sum_to_one_over_valid_frames():
    torch.manual_seed(0)
    p = pool("attentive_stats", attention_dim=8)
    assert isinstance(p, AttentiveStatsPooling) and p.output_size() == 4
    w = p.attention_weights(XS, LENS)
    assert w.shape == (2, 3)
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    assert w[1, 2] == 0.0 and (w[0] > 0).all()


def test_attentive_stats_match_weighted_mean_and_std():
    torch.manual_seed(0)
    p = pool("attentive_stats", attention_dim=8)
    out = p(XS, LENS)
    w = p.attention_weights(XS, LENS)
    for b, n in enumerate(LENS.tolist()):
        x, a = XS[b, :n], w[b, :n].unsqueeze(-1)
        mean = (a * x).sum(0)
        std = ((a * (x - mean) ** 2).sum(0)).sqrt()
        assert torch.allclose(out[b, :2], mean, atol=1e-5)
        assert torch.allclose(out[b, 2:], std, atol=1e-4)
    # the padded frame does not change the result
    xs2 = XS.clone()
    xs2[1, 2] = -7.0
    assert torch.allclose(p(xs2, LENS), out)


def test_attentive_uniform_scores_give_plain_mean():
    p = pool("attentive_stats", attention_dim=4)
    torch.nn.init.zeros_(p.score.weight)
    out = p(XS, LENS)
    assert torch.allclose(out[:, :2], pool("mean")(XS, LENS))
    # std of utterance 1 (valid frames [2, 1], [-4, 3]) is [3, 1]
    assert torch.allclose(out[1, 2:], torch.tensor([3.0, 1.0]), atol=1e-4)


def test_attentive_stats_backward_is_finite():
    p = pool("attentive_stats")
    xs = XS.clone().requires_grad_(True)
    xs2 = torch.zeros(1, 3, 2, requires_grad=True)  # constant frames: std at the clamp
    (p(xs, LENS).sum() + p(xs2, torch.tensor([3])).sum()).backward()
    assert torch.isfinite(xs.grad).all() and torch.isfinite(xs2.grad).all()


def test_linear_classifier_shape():
    c = classifier_choices.get_class("linear")(input_size=6, num_classes=4)
    assert isinstance(c, LinearClassifier)
    assert c(torch.randn(5, 6)).shape == (5, 4)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "swish"])
def test_ffn_classifier_shape_and_layers(activation):
    c = classifier_choices.get_class("ffn")(input_size=6, num_classes=3, hidden_units=16,
                                             num_layers=2, activation=activation, dropout=0.2)
    assert isinstance(c, FFNClassifier)
    assert sum(isinstance(m, torch.nn.Linear) for m in c.modules()) == 3
    assert c(torch.randn(5, 6)).shape == (5, 3)


def test_ffn_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        FFNClassifier(input_size=4, num_classes=2, activation="nope")
