"""Global Style Tokens (GST) style encoder (Wang et al., 2018): reference encoder + token layer.
Padding is zeroed after every conv block and the GRU stops at the last valid frame, so in eval
mode an utterance gets the same style alone or in a batch. Names: as bin.convert_gst_tacotron's."""

import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from espnet_ser.asr.style import AbsStyleEncoder

KERNEL_SIZE, STRIDE, PADDING = 3, 2, 1  # of every reference-encoder convolution


def conv_output_length(length: Union[int, torch.Tensor]) -> Union[int, torch.Tensor]:
    """Length after one 3x3 / stride-2 / padding-1 convolution."""
    return (length + 2 * PADDING - KERNEL_SIZE) // STRIDE + 1


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class ReferenceEncoder(torch.nn.Module):
    """Conv2d + BatchNorm + ReLU stack, then a GRU: (B, T, n_mels) -> (B, ref_dim)."""

    def __init__(self, n_mels: int, conv_channels: Sequence[int], ref_dim: int):
        super().__init__()
        self.n_mels = n_mels
        channels = [1] + list(conv_channels)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(c_in, c_out, KERNEL_SIZE, stride=STRIDE, padding=PADDING)
            for c_in, c_out in zip(channels, channels[1:]))
        self.bns = torch.nn.ModuleList(torch.nn.BatchNorm2d(c) for c in conv_channels)
        self.out_freq = n_mels
        for _ in conv_channels:
            self.out_freq = conv_output_length(self.out_freq)
        self.gru = torch.nn.GRU(channels[-1] * self.out_freq, ref_dim, batch_first=True)

    def forward(self, feats: torch.Tensor, feats_lengths: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        batch, time, _ = feats.shape
        x = feats.unsqueeze(1)  # (B, 1, T, n_mels)
        lengths = None
        if feats_lengths is not None:
            lengths = feats_lengths.to(device=feats.device, dtype=torch.long).clamp(1, time)
            if bool((lengths >= time).all()):
                lengths = None  # nothing padded: same path as a single utterance
            else:
                x = self._zero_padding(x, lengths)
        for conv, bn in zip(self.convs, self.bns):
            x = torch.relu(bn(conv(x)))
            if lengths is not None:
                lengths = conv_output_length(lengths)
                x = self._zero_padding(x, lengths)
        # (B, C, T', F') -> (B, T', C, F') -> (B, T', C * F'): channel-major, then frequency
        x = x.transpose(1, 2).reshape(batch, -1, x.size(1) * x.size(3))
        self.gru.flatten_parameters()
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(x)
        return hidden[-1]  # (B, ref_dim)

    @staticmethod
    def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero the time steps (dim 2) at or past ``lengths`` of (B, C, T, F)."""
        padded = torch.arange(x.size(2), device=x.device)[None, :] >= lengths[:, None]  # (B, T)
        return x.masked_fill(padded[:, None, :, None], 0.0)


class StyleTokenLayer(torch.nn.Module):
    """Multi-head attention from a reference embedding to learned style tokens."""

    def __init__(self, ref_dim: int, n_tokens: int, n_heads: int, style_dim: int,
                 token_dim: int):
        super().__init__()
        self.n_heads, self.token_dim, self.style_dim = n_heads, token_dim, style_dim
        self.embed = torch.nn.Parameter(torch.empty(n_tokens, token_dim))
        torch.nn.init.normal_(self.embed, mean=0.0, std=0.5)
        self.query_proj = torch.nn.Linear(ref_dim, style_dim, bias=False)
        self.key_proj = torch.nn.Linear(token_dim, style_dim, bias=False)
        self.value_proj = torch.nn.Linear(token_dim, style_dim, bias=False)

    def forward(self, query: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, ref_dim) -> style (B, style_dim), weights (B, n_heads, n_tokens)."""
        batch = query.size(0)
        head_dim = self.style_dim // self.n_heads
        tokens = torch.tanh(self.embed)  # (N, token_dim)
        q = self.query_proj(query).view(batch, self.n_heads, head_dim)  # (B, H, d)
        k = self.key_proj(tokens).view(-1, self.n_heads, head_dim).transpose(0, 1)  # (H, N, d)
        v = self.value_proj(tokens).view(-1, self.n_heads, head_dim).transpose(0, 1)
        # scaled by the token dimension, as in the GST-Tacotron implementation
        scores = torch.einsum("bhd,hnd->bhn", q, k) / math.sqrt(self.token_dim)
        weights = torch.softmax(scores, dim=-1)  # over tokens
        style = torch.einsum("bhn,hnd->bhd", weights, v).reshape(batch, self.style_dim)
        return style, weights


class GSTEncoder(AbsStyleEncoder):
    """Log-mel (B, T, n_mels) -> style (B, style_dim); ``ref_dim``: GRU size; ``n_heads`` divides
    ``style_dim``; ``token_dim`` defaults to ``style_dim // n_heads`` (the paper's defaults)."""

    input_name = "style_speech"

    def __init__(self, n_mels: int = 80, conv_channels: Sequence[int] = (32, 32, 64, 64, 128, 128),
                 ref_dim: int = 128, n_tokens: int = 10, n_heads: int = 8, style_dim: int = 256,
                 token_dim: Optional[int] = None):
        super().__init__()
        _check_positive_int("n_mels", n_mels)
        if isinstance(conv_channels, (str, bytes)) or not isinstance(conv_channels, Sequence):
            raise ValueError(f"conv_channels must be a list of integers, got {conv_channels!r}")
        if len(conv_channels) == 0:
            raise ValueError("conv_channels must list at least one convolution")
        sizes = {f"conv_channels[{i}]": c for i, c in enumerate(conv_channels)}
        sizes.update(ref_dim=ref_dim, n_tokens=n_tokens, n_heads=n_heads, style_dim=style_dim)
        for name, value in sizes.items():
            _check_positive_int(name, value)
        if style_dim % n_heads != 0:
            raise ValueError(f"style_dim ({style_dim}) must be divisible by n_heads ({n_heads})")
        if token_dim is None:
            token_dim = style_dim // n_heads
        _check_positive_int("token_dim", token_dim)
        self.n_mels, self.ref_dim, self.n_tokens = n_mels, ref_dim, n_tokens
        self.n_heads, self.style_dim, self.token_dim = n_heads, style_dim, token_dim
        self.conv_channels = [int(c) for c in conv_channels]
        self.reference_encoder = ReferenceEncoder(n_mels, self.conv_channels, ref_dim)
        self.style_tokens = StyleTokenLayer(ref_dim, n_tokens, n_heads, style_dim, token_dim)

    def output_size(self) -> int:
        return self.style_dim

    def forward(self, feats: torch.Tensor, feats_lengths: Optional[torch.Tensor] = None,
                return_weights: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Style (B, style_dim); with ``return_weights`` also the weights (B, n_heads, n_tokens)."""
        if feats.dim() != 3 or feats.size(-1) != self.n_mels:
            raise ValueError(f"GSTEncoder expects log-mel features (B, T, {self.n_mels}), "
                             f"got {tuple(feats.shape)}")
        if feats.size(1) == 0:
            raise ValueError("GSTEncoder got features with no frames")
        query = self.reference_encoder(feats, feats_lengths)
        style, weights = self.style_tokens(query)
        return (style, weights) if return_weights else style
