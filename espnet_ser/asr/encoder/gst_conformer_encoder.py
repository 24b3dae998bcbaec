"""Conformer encoder whose blocks are conditioned on a global style embedding.

Each conditioned block adds ``FFN(style)`` to its hidden states right after the
first (macaron) half-step feed-forward module::

    h~ = h + 1/2 FFN(LN(h))
    h^ = h~ + FFN_style(s)

and then continues exactly like ESPnet's conformer ``EncoderLayer``. The last
linear layer of every style FFN starts at zero, so a freshly built encoder
computes the same function as ESPnet's ``ConformerEncoder`` with the same
conformer parameters.
"""

from typing import Dict, List, Optional, Tuple, Union

import torch
from typeguard import typechecked

from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet.nets.pytorch_backend.nets_utils import get_activation, make_pad_mask
from espnet.nets.pytorch_backend.transformer.subsampling import (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
    check_short_utt,
)

_SUBSAMPLING_TYPES = (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
)


class StyleFFN(torch.nn.Module):
    """Style projection ``Linear -> activation -> Linear``: (B, in_dim) -> (B, out_dim).

    The last linear layer (weight and bias) is zero at construction and again
    after ``espnet2.torch_utils.initialize.initialize`` (via
    ``espnet_initialization_fn``).
    """

    def __init__(self, in_dim: int, hidden_units: int, out_dim: int, activation: str):
        super().__init__()
        self.w_1 = torch.nn.Linear(in_dim, hidden_units)
        self.activation = get_activation(activation)
        self.w_2 = torch.nn.Linear(hidden_units, out_dim)
        self.zero_last_layer()

    def zero_last_layer(self):
        """Set the last linear layer's weight and bias to zero."""
        with torch.no_grad():
            self.w_2.weight.zero_()
            self.w_2.bias.zero_()

    def espnet_initialization_fn(self):
        """Called by ESPnet's ``initialize`` after it re-initialises all parameters."""
        self.zero_last_layer()

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.activation(self.w_1(style)))


def conditioned_layer_forward(layer, x_input, mask, style_bias: torch.Tensor):
    """Run one ESPnet conformer ``EncoderLayer`` with a style term added.

    Follows ``EncoderLayer.forward`` (without cache) using the layer's own
    submodules. ``style_bias`` (B, 1, D) is added right after the macaron
    feed-forward sub-block, i.e. after its residual add and, when
    ``normalize_before`` is False, after its post-norm. Without a macaron
    feed-forward module it is added to the block input, before the
    self-attention sub-block. Under stochastic depth (training only) the style
    term is scaled by the same ``1 / (1 - p)`` factor as the residual branches
    and is skipped together with the block.

    Args:
        layer: ``espnet.nets.pytorch_backend.conformer.encoder_layer.EncoderLayer``.
        x_input: (B, T, D) tensor, or tuple (x, pos_emb) for relative positions.
        mask: (B, 1, T) mask.
        style_bias: (B, 1, D) style term.

    Returns:
        Output in the same form as ``x_input`` and the mask.
    """
    if isinstance(x_input, tuple):
        x, pos_emb = x_input[0], x_input[1]
    else:
        x, pos_emb = x_input, None

    coeff = 1.0
    if layer.training and layer.stochastic_depth_rate > 0:
        if torch.rand(1).item() < layer.stochastic_depth_rate:
            return x_input, mask
        coeff = 1.0 / (1 - layer.stochastic_depth_rate)

    pre_norm = layer.normalize_before

    if layer.feed_forward_macaron is not None:
        residual = x
        if pre_norm:
            x = layer.norm_ff_macaron(x)
        x = residual + coeff * layer.ff_scale * layer.dropout(layer.feed_forward_macaron(x))
        if not pre_norm:
            x = layer.norm_ff_macaron(x)
    # style term: after the macaron sub-block, or at the block input without it
    x = x + coeff * style_bias

    # self-attention
    residual = x
    if pre_norm:
        x = layer.norm_mha(x)
    if pos_emb is not None:
        att = layer.self_attn(x, x, x, pos_emb, mask)
    else:
        att = layer.self_attn(x, x, x, mask)
    if layer.concat_after:
        x = residual + coeff * layer.concat_linear(torch.cat((x, att), dim=-1))
    else:
        x = residual + coeff * layer.dropout(att)
    if not pre_norm:
        x = layer.norm_mha(x)

    # convolution module
    if layer.conv_module is not None:
        residual = x
        if pre_norm:
            x = layer.norm_conv(x)
        x = residual + coeff * layer.dropout(layer.conv_module(x))
        if not pre_norm:
            x = layer.norm_conv(x)

    # second feed-forward
    residual = x
    if pre_norm:
        x = layer.norm_ff(x)
    x = residual + coeff * layer.ff_scale * layer.dropout(layer.feed_forward(x))
    if not pre_norm:
        x = layer.norm_ff(x)

    if layer.conv_module is not None:
        x = layer.norm_final(x)

    if pos_emb is not None:
        return (x, pos_emb), mask
    return x, mask


class GSTConformerEncoder(ConformerEncoder):
    """ESPnet ``ConformerEncoder`` with style-conditioned blocks.

    Conformer arguments are ESPnet's and are passed through unchanged; the
    conformer parameters keep ESPnet's names (``embed.*``, ``encoders.{i}.*``,
    ``after_norm.*``). Style arguments (keyword-only):

    Args:
        style_dim: Size of the style embedding given to ``forward`` (> 0).
        cond_layers: 0-based indices of the blocks to condition; None = all.
        style_ffn: "shared" (one style FFN, ``style_ffn.*``) or "per_block"
            (one per conditioned block, ``style_ffns.{i}.*``).
        style_hidden_units: Hidden size of the style FFN; None = output_size.
        style_activation: Activation of the style FFN (ESPnet activation name).

    Intermediate CTC (``interctc_layer_idx``, ``interctc_use_conditioning``)
    behaves as in ESPnet; ``ctc_trim=True`` is rejected. As in ESPnet's
    ``ConformerEncoder.forward``, ``layer_drop_rate`` is stored but not applied.
    """

    accepts_style = True  # the joint model passes forward(..., style=...)

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 2048,
        num_blocks: int = 6,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        input_layer: Optional[str] = "conv2d",
        normalize_before: bool = True,
        concat_after: bool = False,
        positionwise_layer_type: str = "linear",
        positionwise_conv_kernel_size: int = 3,
        macaron_style: bool = False,
        rel_pos_type: str = "legacy",
        pos_enc_layer_type: str = "rel_pos",
        selfattention_layer_type: str = "rel_selfattn",
        activation_type: str = "swish",
        use_cnn_module: bool = True,
        zero_triu: bool = False,
        cnn_module_kernel: int = 31,
        padding_idx: int = -1,
        interctc_layer_idx: List[int] = [],
        interctc_use_conditioning: bool = False,
        ctc_trim: bool = False,
        stochastic_depth_rate: Union[float, List[float]] = 0.0,
        layer_drop_rate: float = 0.0,
        max_pos_emb_len: int = 5000,
        qk_norm: bool = False,
        use_flash_attn: bool = True,
        *,
        style_dim: int,
        cond_layers: Optional[List[int]] = None,
        style_ffn: str = "shared",
        style_hidden_units: Optional[int] = None,
        style_activation: str = "swish",
    ):
        if style_dim <= 0:
            raise ValueError(f"style_dim must be > 0, got {style_dim}")
        if style_ffn not in ("shared", "per_block"):
            raise ValueError(f"style_ffn must be 'shared' or 'per_block', got {style_ffn!r}")
        if style_hidden_units is not None and style_hidden_units <= 0:
            raise ValueError(f"style_hidden_units must be > 0, got {style_hidden_units}")
        if ctc_trim:
            raise ValueError("GSTConformerEncoder does not support ctc_trim=True")
        if cond_layers is None:
            cond_layers = list(range(num_blocks))
        else:
            cond_layers = list(cond_layers)
            if len(cond_layers) == 0:
                raise ValueError(
                    "cond_layers is empty; use None to condition all blocks "
                    "or the plain conformer encoder for none"
                )
            bad = [i for i in cond_layers if not 0 <= i < num_blocks]
            if bad:
                raise ValueError(
                    f"cond_layers {bad} out of range for num_blocks={num_blocks} "
                    f"(0-based indices 0..{num_blocks - 1})"
                )
            if len(set(cond_layers)) != len(cond_layers):
                raise ValueError(f"cond_layers has duplicate indices: {cond_layers}")
        try:
            get_activation(style_activation)
        except KeyError:
            raise ValueError(f"unknown style_activation: {style_activation!r}") from None

        super().__init__(
            input_size,
            output_size=output_size,
            attention_heads=attention_heads,
            linear_units=linear_units,
            num_blocks=num_blocks,
            dropout_rate=dropout_rate,
            positional_dropout_rate=positional_dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            input_layer=input_layer,
            normalize_before=normalize_before,
            concat_after=concat_after,
            positionwise_layer_type=positionwise_layer_type,
            positionwise_conv_kernel_size=positionwise_conv_kernel_size,
            macaron_style=macaron_style,
            rel_pos_type=rel_pos_type,
            pos_enc_layer_type=pos_enc_layer_type,
            selfattention_layer_type=selfattention_layer_type,
            activation_type=activation_type,
            use_cnn_module=use_cnn_module,
            zero_triu=zero_triu,
            cnn_module_kernel=cnn_module_kernel,
            padding_idx=padding_idx,
            interctc_layer_idx=interctc_layer_idx,
            interctc_use_conditioning=interctc_use_conditioning,
            ctc_trim=ctc_trim,
            stochastic_depth_rate=stochastic_depth_rate,
            layer_drop_rate=layer_drop_rate,
            max_pos_emb_len=max_pos_emb_len,
            qk_norm=qk_norm,
            use_flash_attn=use_flash_attn,
        )

        self.style_dim = style_dim
        self.cond_layers = sorted(cond_layers)
        self.style_ffn_type = style_ffn
        hidden = output_size if style_hidden_units is None else style_hidden_units

        def make_ffn():
            return StyleFFN(style_dim, hidden, output_size, style_activation)

        if style_ffn == "shared":
            self.style_ffn = make_ffn()
        else:
            self.style_ffns = torch.nn.ModuleDict({str(i): make_ffn() for i in self.cond_layers})

    def _style_biases(self, style: torch.Tensor) -> Dict[int, torch.Tensor]:
        """Style term (B, 1, D) for each conditioned block index."""
        if self.style_ffn_type == "shared":
            bias = self.style_ffn(style)[:, None, :]
            return {i: bias for i in self.cond_layers}
        return {i: self.style_ffns[str(i)](style)[:, None, :] for i in self.cond_layers}

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        style: Optional[torch.Tensor] = None,
        prev_states: torch.Tensor = None,
        masks: torch.Tensor = None,
        ctc: CTC = None,
        return_all_hs: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Encode ``xs_pad`` (B, T, input_size), conditioning on ``style`` (B, style_dim).

        ``style=None`` gives the plain conformer output. ``masks`` (B, T, True at
        padding), ``ctc`` and ``return_all_hs`` are as in ESPnet's
        ``ConformerEncoder.forward``; so is the return value.
        """
        if style is not None:
            if not isinstance(style, torch.Tensor) or style.dim() != 2:
                raise ValueError(
                    f"style must be a 2-D tensor (batch, {self.style_dim}), got "
                    f"{tuple(style.shape) if isinstance(style, torch.Tensor) else type(style)}"
                )
            if style.size(1) != self.style_dim:
                raise ValueError(
                    f"style has size {style.size(1)} in dim 1, expected style_dim={self.style_dim}"
                )
            if style.size(0) != xs_pad.size(0):
                raise ValueError(
                    f"style batch size {style.size(0)} != input batch size {xs_pad.size(0)}"
                )

        if masks is None:
            masks = (~make_pad_mask(ilens)[:, None, :]).to(xs_pad.device)
        else:
            masks = ~masks[:, None, :]

        if isinstance(self.embed, _SUBSAMPLING_TYPES):
            short, limit = check_short_utt(self.embed, xs_pad.size(1))
            if short:
                raise TooShortUttError(
                    f"has {xs_pad.size(1)} frames and is too short for subsampling "
                    f"(it needs more than {limit} frames), return empty results",
                    xs_pad.size(1),
                    limit,
                )
            xs_pad, masks = self.embed(xs_pad, masks)
        else:
            xs_pad = self.embed(xs_pad)

        biases = {} if style is None else self._style_biases(style)

        intermediate_outs = []
        for layer_idx, layer in enumerate(self.encoders):
            if layer_idx in biases:
                xs_pad, masks = conditioned_layer_forward(layer, xs_pad, masks, biases[layer_idx])
            else:
                xs_pad, masks = layer(xs_pad, masks)

            if len(self.interctc_layer_idx) == 0:
                if return_all_hs:
                    intermediate_outs.append(xs_pad[0] if isinstance(xs_pad, tuple) else xs_pad)
                continue

            if layer_idx + 1 in self.interctc_layer_idx:
                encoder_out = xs_pad[0] if isinstance(xs_pad, tuple) else xs_pad
                # intermediate outputs are normalised like the final output
                if self.normalize_before:
                    encoder_out = self.after_norm(encoder_out)
                intermediate_outs.append((layer_idx + 1, encoder_out))

                if self.interctc_use_conditioning:
                    cond = self.conditioning_layer(ctc.softmax(encoder_out))
                    if isinstance(xs_pad, tuple):
                        xs_pad = (xs_pad[0] + cond, xs_pad[1])
                    else:
                        xs_pad = xs_pad + cond

        if isinstance(xs_pad, tuple):
            xs_pad = xs_pad[0]
        if self.normalize_before:
            xs_pad = self.after_norm(xs_pad)

        olens = masks.squeeze(1).sum(1)
        if len(intermediate_outs) > 0:
            return (xs_pad, intermediate_outs), olens, None
        return xs_pad, olens, None
