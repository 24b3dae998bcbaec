"""Conformer encoder whose blocks add ``FFN_style(s)`` after the macaron feed-forward module; the
style FFNs' last layers start at zero, so a fresh encoder computes what ConformerEncoder does."""

import functools
import inspect
from typing import List, Optional, Tuple

import torch
from typeguard import typechecked

from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet.nets.pytorch_backend.nets_utils import get_activation

_CONFORMER_SIGNATURE = inspect.signature(ConformerEncoder.__init__)


class StyleFFN(torch.nn.Module):
    """``Linear -> activation -> Linear``, (B, in_dim) -> (B, out_dim), its last layer zeroed."""

    def __init__(self, in_dim: int, hidden_units: int, out_dim: int, activation: str):
        super().__init__()
        self.w_1 = torch.nn.Linear(in_dim, hidden_units)
        self.activation = get_activation(activation)
        self.w_2 = torch.nn.Linear(hidden_units, out_dim)
        self.espnet_initialization_fn()

    @torch.no_grad()
    def espnet_initialization_fn(self):
        """Zero the last layer; ESPnet's ``initialize`` calls it after re-initialising all."""
        self.w_2.weight.zero_()
        self.w_2.bias.zero_()

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.activation(self.w_1(style)))


def conditioned_layer_forward(layer, x_input, mask, style_bias: torch.Tensor):
    """ESPnet's conformer ``EncoderLayer.forward`` (no cache) with ``style_bias`` (B, 1, D) added
    after the macaron sub-block (or to the block input without one), scaled and skipped under
    stochastic depth like the residuals. ``x_input``: (B, T, D) or (x, pos_emb), returned alike."""
    x, pos_emb = x_input if isinstance(x_input, tuple) else (x_input, None)
    coeff = 1.0
    if layer.training and layer.stochastic_depth_rate > 0:
        if torch.rand(1).item() < layer.stochastic_depth_rate:
            return x_input, mask
        coeff = 1.0 / (1 - layer.stochastic_depth_rate)

    pre_norm = layer.normalize_before

    def sublayer(x, norm, module, scale=1.0):
        """``x + coeff * scale * dropout(module(x'))``, with pre- or post-norm."""
        x = x + coeff * scale * layer.dropout(module(norm(x) if pre_norm else x))
        return x if pre_norm else norm(x)

    if layer.feed_forward_macaron is not None:
        x = sublayer(x, layer.norm_ff_macaron, layer.feed_forward_macaron, layer.ff_scale)
    x = x + coeff * style_bias

    residual = x  # self-attention
    if pre_norm:
        x = layer.norm_mha(x)
    att = layer.self_attn(x, x, x, mask) if pos_emb is None else layer.self_attn(x, x, x, pos_emb, mask)
    if layer.concat_after:
        x = residual + coeff * layer.concat_linear(torch.cat((x, att), dim=-1))
    else:
        x = residual + coeff * layer.dropout(att)
    if not pre_norm:
        x = layer.norm_mha(x)
    if layer.conv_module is not None:
        x = sublayer(x, layer.norm_conv, layer.conv_module)
    x = sublayer(x, layer.norm_ff, layer.feed_forward, layer.ff_scale)
    if layer.conv_module is not None:
        x = layer.norm_final(x)
    return (x if pos_emb is None else (x, pos_emb)), mask


class GSTConformerEncoder(ConformerEncoder):
    """ESPnet ``ConformerEncoder`` (same arguments and parameter names, no ``ctc_trim``) with
    style-conditioned blocks: keyword-only ``style_dim``, ``cond_layers`` (0-based; None: all),
    ``style_ffn`` "shared" (``style_ffn.*``) or "per_block" (``style_ffns.{i}.*``),
    ``style_hidden_units`` (None: output_size), ``style_activation``."""

    accepts_style = True  # the joint model passes forward(..., style=...)

    @typechecked
    def __init__(self, input_size: int, *, style_dim: int, cond_layers: Optional[List[int]] = None,
                 style_ffn: str = "shared", style_hidden_units: Optional[int] = None,
                 style_activation: str = "swish", **conformer_kwargs):
        # ESPnet's arguments (unknown ones are a TypeError), with ESPnet's defaults
        bound = _CONFORMER_SIGNATURE.bind(self, input_size, **conformer_kwargs)
        bound.apply_defaults()
        conformer_args = {k: v for k, v in bound.arguments.items() if k != "self"}
        num_blocks, output_size = conformer_args["num_blocks"], conformer_args["output_size"]
        if style_dim <= 0:
            raise ValueError(f"style_dim must be > 0, got {style_dim}")
        if style_ffn not in ("shared", "per_block"):
            raise ValueError(f"style_ffn must be 'shared' or 'per_block', got {style_ffn!r}")
        if style_hidden_units is not None and style_hidden_units <= 0:
            raise ValueError(f"style_hidden_units must be > 0, got {style_hidden_units}")
        if conformer_args["ctc_trim"]:
            raise ValueError("GSTConformerEncoder does not support ctc_trim=True")
        cond_layers = list(range(num_blocks)) if cond_layers is None else list(cond_layers)
        if not cond_layers:
            raise ValueError("cond_layers is empty; use None to condition all blocks "
                             "or the plain conformer encoder for none")
        bad = [i for i in cond_layers if not 0 <= i < num_blocks]
        if bad:
            raise ValueError(f"cond_layers {bad} out of range for num_blocks={num_blocks} "
                             f"(0-based indices 0..{num_blocks - 1})")
        if len(set(cond_layers)) != len(cond_layers):
            raise ValueError(f"cond_layers has duplicate indices: {cond_layers}")
        try:
            get_activation(style_activation)
        except KeyError:
            raise ValueError(f"unknown style_activation: {style_activation!r}") from None

        super().__init__(**conformer_args)
        self.style_dim = style_dim
        self.cond_layers = sorted(cond_layers)
        self.style_ffn_type = style_ffn
        hidden = output_size if style_hidden_units is None else style_hidden_units
        ffn_args = (style_dim, hidden, output_size, style_activation)
        if style_ffn == "shared":
            self.style_ffn = StyleFFN(*ffn_args)
        else:
            self.style_ffns = torch.nn.ModuleDict({str(i): StyleFFN(*ffn_args)
                                                   for i in self.cond_layers})

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, style: Optional[torch.Tensor] = None,
                prev_states: torch.Tensor = None, masks: torch.Tensor = None, ctc: CTC = None,
                return_all_hs: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """ESPnet's ``ConformerEncoder.forward`` conditioned on ``style`` (B, style_dim), or plain."""
        if style is None:
            return super().forward(xs_pad, ilens, prev_states, masks, ctc, return_all_hs)
        if not isinstance(style, torch.Tensor) or style.dim() != 2:
            got = tuple(style.shape) if isinstance(style, torch.Tensor) else type(style)
            raise ValueError(f"style must be a 2-D tensor (batch, {self.style_dim}), got {got}")
        if style.size(1) != self.style_dim:
            raise ValueError(f"style has size {style.size(1)} in dim 1, expected style_dim={self.style_dim}")
        if style.size(0) != xs_pad.size(0):
            raise ValueError(f"style batch size {style.size(0)} != input batch size {xs_pad.size(0)}")
        # ESPnet's forward calls each block as block(xs_pad, masks): for this call, the
        # conditioned blocks run conditioned_layer_forward with their style term instead
        shared = self.style_ffn(style) if self.style_ffn_type == "shared" else None
        for i in self.cond_layers:
            bias = shared if shared is not None else self.style_ffns[str(i)](style)
            self.encoders[i].forward = functools.partial(conditioned_layer_forward, self.encoders[i],
                                                         style_bias=bias[:, None, :])  # (B, 1, D)
        try:
            return super().forward(xs_pad, ilens, prev_states, masks, ctc, return_all_hs)
        finally:
            for i in self.cond_layers:
                del self.encoders[i].forward


# ESPnet reads a component's arguments from its signature (--print_config, pretrained configs):
# ConformerEncoder's, then the keyword-only style arguments
GSTConformerEncoder.__init__.__signature__ = _CONFORMER_SIGNATURE.replace(parameters=[
    *_CONFORMER_SIGNATURE.parameters.values(),
    *list(inspect.signature(GSTConformerEncoder.__init__).parameters.values())[2:-1]])
