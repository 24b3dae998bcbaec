"""Utterance-level heads: poolings of the valid encoder frames ``(B, T, D)`` -> ``(B,
output_size())`` and classifiers ``(B, D)`` -> logits, selected by name (``ClassChoices``)."""

from abc import ABC, abstractmethod
import torch
from espnet2.train.class_choices import ClassChoices


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, T)`` boolean mask, True on frames ``t < lengths[b]``."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


class AbsPooling(torch.nn.Module, ABC):
    """Frames ``(B, T, D)`` and lengths ``(B,)`` to one vector per utterance."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _FramePooling(AbsPooling):
    """A pooling over ``input_size``-dim frames giving ``width * input_size`` outputs."""

    width = 1

    def __init__(self, input_size: int):
        super().__init__()
        self._size = input_size

    def output_size(self) -> int:
        return self.width * self._size


class SumPooling(_FramePooling):
    """Sum of the valid frames (D)."""

    def forward(self, xs, lengths):
        mask = valid_mask(lengths, xs.size(1)).unsqueeze(-1).to(xs.dtype)
        return (xs * mask).sum(dim=1)


class MeanPooling(_FramePooling):
    """Mean of the valid frames (D)."""

    def forward(self, xs, lengths):
        mask = valid_mask(lengths, xs.size(1)).unsqueeze(-1).to(xs.dtype)
        return (xs * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanMaxPooling(_FramePooling):
    """Mean and max of the valid frames, concatenated (2D)."""

    width = 2

    def forward(self, xs, lengths):
        mean = MeanPooling.forward(self, xs, lengths)
        mask = valid_mask(lengths, xs.size(1)).unsqueeze(-1)
        mx = xs.masked_fill(~mask, torch.finfo(xs.dtype).min).max(dim=1).values
        mx = torch.where(mask.any(dim=1), mx, torch.zeros_like(mx))
        return torch.cat([mean, mx], dim=-1)


class AttentiveStatsPooling(_FramePooling):
    """Attentive statistics (2D): softmax over valid frames of ``w^T tanh(W x + b)`` gives
    ``a_t``; output ``[sum a_t x_t, sqrt(sum a_t x_t^2 - mean^2)]``."""

    width = 2

    def __init__(self, input_size: int, attention_dim: int = 128, eps: float = 1e-5):
        super().__init__(input_size)
        self.eps = eps
        self.hidden = torch.nn.Linear(input_size, attention_dim)
        self.score = torch.nn.Linear(attention_dim, 1, bias=False)

    def attention_weights(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` weights; zero on padded frames, summing to 1 over valid frames."""
        scores = self.score(torch.tanh(self.hidden(xs))).squeeze(-1)
        mask = valid_mask(lengths, xs.size(1))
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        # all-padded rows give NaN: zeros
        return weights.masked_fill(~mask, 0.0)

    def forward(self, xs, lengths):
        w = self.attention_weights(xs, lengths).unsqueeze(-1)
        mean = (w * xs).sum(dim=1)
        var = (w * xs.pow(2)).sum(dim=1) - mean.pow(2)
        std = torch.sqrt(var.clamp(min=self.eps))
        return torch.cat([mean, std], dim=-1)


pooling_choices = ClassChoices(
    name="pooling", type_check=AbsPooling, default="mean",
    classes=dict(sum=SumPooling, mean=MeanPooling, mean_max=MeanMaxPooling,
                 attentive_stats=AttentiveStatsPooling))


_ACTIVATIONS = dict(relu=torch.nn.ReLU, gelu=torch.nn.GELU, tanh=torch.nn.Tanh,
                    swish=torch.nn.SiLU, silu=torch.nn.SiLU, leaky_relu=torch.nn.LeakyReLU)


class AbsClassifier(torch.nn.Module, ABC):
    """Pooled vectors ``(B, D)`` to logits ``(B, num_classes)``."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LinearClassifier(AbsClassifier):
    """Dropout then one linear layer."""

    def __init__(self, input_size: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(input_size, num_classes)

    def forward(self, x):
        return self.out(self.dropout(x))


class FFNClassifier(AbsClassifier):
    """``num_layers`` blocks of linear, activation and dropout, then a linear output layer."""

    def __init__(self, input_size: int, num_classes: int, hidden_units: int = 256,
                 num_layers: int = 1, activation: str = "relu", dropout: float = 0.1):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}: {activation}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1: {num_layers}")
        self.num_classes = num_classes
        layers, size = [], input_size
        for _ in range(num_layers):
            layers += [torch.nn.Linear(size, hidden_units), _ACTIVATIONS[activation](),
                       torch.nn.Dropout(dropout)]
            size = hidden_units
        self.hidden = torch.nn.Sequential(*layers)
        self.out = torch.nn.Linear(size, num_classes)

    def forward(self, x):
        return self.out(self.hidden(x))


classifier_choices = ClassChoices(
    name="classifier", classes=dict(linear=LinearClassifier, ffn=FFNClassifier),
    type_check=AbsClassifier, default="linear")
