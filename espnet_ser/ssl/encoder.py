"""ESPnet encoder over a ``transformers`` self-supervised speech model.

``SSLEncoder`` takes raw 16 kHz waveforms and returns the hidden states of a
wav2vec 2.0, HuBERT or WavLM model (``transformers`` implementation): the last
layer, one chosen layer, or a learned softmax-weighted sum of all layers.

Hidden state indexing follows ``transformers``' ``output_hidden_states``:
index 0 is the input to the first transformer layer (feature projection plus
positional convolution), index k (1..N) is the output of transformer layer k.
For ``do_stable_layer_norm`` models the last one (index N) includes the final
layer norm, as in ``last_hidden_state``.

Padding follows the ``transformers`` feature extractor convention: models whose
convolutional feature extractor uses layer norm (``feat_extract_norm ==
"layer"``, e.g. wav2vec2-large-lv60, XLS-R, HuBERT-large, WavLM-large) are given
an attention mask built from ``ilens``, and their outputs on the valid frames do
not depend on padding. Models with group norm (``feat_extract_norm ==
"group"``, e.g. wav2vec2-base, HuBERT-base, WavLM-base) were trained without an
attention mask; for them ``transformers`` recommends zero padding and no mask.
Group norm normalises over the whole (padded) time axis, so for those models a
padded utterance gives slightly different outputs from the same utterance
alone. In both cases the padding samples are set to zero and the output frames
beyond ``olens`` are set to zero.

Waveform normalisation follows the checkpoint: ``normalize_waveform=None``
(default) reads ``do_normalize`` from the checkpoint's own
``preprocessor_config.json`` (the ``Wav2Vec2FeatureExtractor`` settings it was
released with; found in a local directory or, for a hub name, through
``transformers``' file resolution and hub cache); True / False override it. A
model built from ``model_config`` has no preprocessor config and is not
normalised; neither is a checkpoint without ``preprocessor_config.json``. The
normalisation is ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm`` over the
valid samples of each utterance (mean and population variance of the valid
samples, ``(x - mean) / sqrt(var + 1e-7)``); padding stays zero. The feature
extractor given a padded batch without an attention mask would instead include
the padding in the statistics; here every utterance is normalised as if alone.

Dumped hidden states (frozen-encoder speed path): with ``freeze="all"`` the
hidden states never change, so stage 3 can compute them once
(``extract_feats.py --extractor ssl_states``, see
:mod:`espnet_ser.features.ssl_states`) and training reads them instead of
running the model. ``forward`` takes a 3-D input (B, T_frames, F) as such a
dump: F = ``len(dumped_layers()) * hidden_size``, the hidden states
``dumped_layers()`` (hidden-state index order) concatenated along the feature
axis, and ``ilens`` are frame counts. The output is the same as from the
waveforms, so one checkpoint decodes both inputs.
"""

import json
import logging
import os
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from typeguard import typechecked

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet_ser.utils.plotting import save_figure

SUPPORTED_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm")
PREPROCESSOR_CONFIG = "preprocessor_config.json"
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
FREEZE_OPTIONS = ("none", "feature_encoder", "all")


class SSLEncoder(AbsEncoder):
    """Encoder returning hidden states of a wav2vec2 / HuBERT / WavLM model.

    Args:
        input_size: Passed by the ESPnet task; ignored (input is a waveform).
        model_name_or_path: Local directory holding ``config.json`` (and
            weights) or a model hub name, loaded with
            ``AutoModel.from_pretrained``.
        model_config: Config fields for a randomly initialised model:
            ``{"model_type": "wav2vec2" | "hubert" | "wavlm", ...}``.
            Exactly one of ``model_name_or_path`` and ``model_config`` is given.
        layer: ``"last"`` (``last_hidden_state``), an int k in 0..N
            (``hidden_states[k]``) or ``"weighted"`` (learned softmax-weighted
            sum of all N+1 hidden states, weights initialised equal).
        freeze: ``"none"``, ``"feature_encoder"`` (the convolutional feature
            extractor) or ``"all"`` (the whole model; run under no_grad).
        freeze_layers: Also freeze the first K transformer layers.
        normalize_waveform: Normalise each utterance to zero mean and unit
            variance over its valid samples, as ``Wav2Vec2FeatureExtractor``
            does. None (default) follows ``do_normalize`` of the checkpoint's
            ``preprocessor_config.json`` (False for a ``model_config`` model or
            a checkpoint without one); True / False override it. The decision
            is logged and kept in ``normalize_waveform`` (a bool) and
            ``normalize_source``.
        apply_spec_augment: Keep the model's SpecAugment-style masking of
            feature frames during training. When False (default),
            ``config.apply_spec_augment`` is set to False and
            ``mask_time_prob`` to 0.
        use_attention_mask: Pass an attention mask built from ``ilens``.
            None (default) follows ``transformers``: True iff
            ``feat_extract_norm == "layer"``.
        local_files_only: Forwarded to ``from_pretrained`` for hub names
            (local directories are always loaded with ``local_files_only``).
        init_seed: Seed of the random weights of a ``model_config`` model, drawn
            apart from the global RNG, so every build of a config gives the same
            model (the stage-3 hidden-state dump and training agree).
    """

    @typechecked
    def __init__(
        self,
        input_size: int = 1,
        model_name_or_path: Optional[str] = None,
        model_config: Optional[Dict] = None,
        layer: Union[int, str] = "last",
        freeze: str = "feature_encoder",
        freeze_layers: int = 0,
        normalize_waveform: Optional[bool] = None,
        apply_spec_augment: bool = False,
        use_attention_mask: Optional[bool] = None,
        local_files_only: bool = False,
        init_seed: int = 0,
    ):
        super().__init__()
        if (model_name_or_path is None) == (model_config is None):
            raise ValueError(
                "SSLEncoder needs exactly one of model_name_or_path and "
                "model_config"
            )
        if freeze not in FREEZE_OPTIONS:
            raise ValueError(
                f"freeze must be one of {FREEZE_OPTIONS}, got {freeze!r}"
            )

        # decided before the weights load, so a broken preprocessor config fails at once
        normalize, normalize_source = _normalization(
            normalize_waveform, model_name_or_path, local_files_only
        )
        if model_name_or_path is not None:
            self.model = _load_pretrained(model_name_or_path, local_files_only)
            self.model_id = f"model_name_or_path={model_name_or_path}"
        else:
            # seeded apart from the global RNG: the stage-3 hidden-state dump and the
            # training run build the same random model
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(init_seed))
                self.model = _build_from_config(model_config)
            self.model_id = "model_config=" + _describe_config(model_config)
        _check_model(self.model)

        config = self.model.config
        self.num_layers = int(config.num_hidden_layers)
        self._output_size = int(config.hidden_size)

        if isinstance(layer, str):
            if layer not in ("last", "weighted"):
                raise ValueError(
                    f"layer must be 'last', 'weighted' or an int, got {layer!r}"
                )
        elif not 0 <= layer <= self.num_layers:
            raise ValueError(
                f"layer={layer} is out of range: the model has "
                f"{self.num_layers} transformer layers, so layer must be in "
                f"0..{self.num_layers} (0 = input to the first layer)"
            )
        self.layer = layer
        if layer == "weighted":
            self.layer_weights = torch.nn.Parameter(
                torch.zeros(self.num_layers + 1)
            )
        else:
            self.register_parameter("layer_weights", None)

        if not 0 <= freeze_layers <= self.num_layers:
            raise ValueError(
                f"freeze_layers={freeze_layers} is out of range: the model has "
                f"{self.num_layers} transformer layers"
            )
        self.freeze = freeze
        self.freeze_layers = freeze_layers
        self.normalize_waveform = normalize
        self.normalize_source = normalize_source
        logging.info(
            f"SSLEncoder ({self.model_id}): normalize_waveform="
            f"{self.normalize_waveform} ({self.normalize_source})"
        )
        self.apply_spec_augment = apply_spec_augment
        if use_attention_mask is None:
            use_attention_mask = getattr(config, "feat_extract_norm", None) == "layer"
        self.use_attention_mask = use_attention_mask

        if not apply_spec_augment:
            config.apply_spec_augment = False
            config.mask_time_prob = 0.0
            masked = getattr(self.model, "masked_spec_embed", None)
            if isinstance(masked, torch.nn.Parameter):
                # Unused without masking; keep it out of the optimiser.
                masked.requires_grad_(False)

        # Names (relative to self) of submodules kept frozen and in eval mode.
        self._frozen_names: List[str] = []
        if freeze == "all":
            self._frozen_names.append("model")
        else:
            if freeze == "feature_encoder":
                self.model.feature_extractor._freeze_parameters()
                self._frozen_names.append("model.feature_extractor")
            for i in range(freeze_layers):
                self._frozen_names.append(f"model.encoder.layers.{i}")
        for name in self._frozen_names:
            self.get_submodule(name).requires_grad_(False)
        self.train(self.training)

    def output_size(self) -> int:
        """Hidden size of the model."""
        return self._output_size

    def train(self, mode: bool = True):
        """Set training mode; frozen submodules always stay in eval mode."""
        super().train(mode)
        for name in getattr(self, "_frozen_names", []):
            self.get_submodule(name).eval()
        return self

    def get_layer_weights(self) -> Optional[torch.Tensor]:
        """Softmax layer weights (N+1,) for ``layer="weighted"``, else None."""
        if self.layer_weights is None:
            return None
        return torch.softmax(self.layer_weights.detach(), dim=0)

    def describe(self) -> str:
        """Return a one-line-per-layer description of the layer weights."""
        weights = self.get_layer_weights()
        if weights is None:
            return f"SSLEncoder layer={self.layer!r} (no learned layer weights)"
        lines = ["SSLEncoder layer weights (0 = input to first layer):"]
        lines += [f"  layer {i:2d}: {w:.4f}" for i, w in enumerate(weights.tolist())]
        return "\n".join(lines)

    def dumped_layers(self) -> List[int]:
        """Hidden-state indices (0..N) this encoder needs, in index order.

        ``layer="last"`` -> ``[N]``, ``layer=k`` -> ``[k]``, ``"weighted"`` ->
        ``[0, ..., N]``. A dump of hidden states for this encoder holds these
        states concatenated along the feature axis.
        """
        if self.layer == "last":
            return [self.num_layers]
        if self.layer == "weighted":
            return list(range(self.num_layers + 1))
        return [int(self.layer)]

    def dump_dim(self) -> int:
        """Feature dimension of a hidden-state dump for this encoder."""
        return len(self.dumped_layers()) * self._output_size

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """Encode waveforms, or read dumped hidden states.

        Args:
            xs_pad: (B, T_samples) 16 kHz waveforms, zero padded; or
                (B, T_frames, F) dumped hidden states (see ``dumped_layers``).
            ilens: (B,) numbers of valid samples (waveforms) or frames (dumps).
            prev_states: Unused.

        Returns:
            hs (B, T', D), olens (B,), None.
        """
        if xs_pad.dim() == 3:
            return self._forward_dumped(xs_pad, ilens)
        if xs_pad.dim() != 2:
            raise ValueError(
                f"SSLEncoder expects (B, T) waveforms or (B, T, F) dumped hidden "
                f"states, got shape {tuple(xs_pad.shape)}"
            )
        ilens = ilens.to(xs_pad.device).long()
        if self.layer == "last":
            hs, olens = self._run_model(xs_pad, ilens, all_states=False)
        else:
            states, olens = self._run_model(xs_pad, ilens, all_states=True)
            if self.layer == "weighted":
                hs = self._weighted_sum(torch.stack(states, dim=0))
            else:
                hs = states[self.layer]
        hs = hs.masked_fill(make_pad_mask(olens, hs, 1), 0.0)
        return hs, olens, None

    def hidden_states(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, layers: Sequence[int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Hidden states ``layers`` of waveforms, as dumped (always under no_grad).

        Returns (B, T', len(layers) * D) (the states concatenated in the order
        of ``layers``, frames beyond ``olens`` zero) and olens (B,).
        """
        ilens = ilens.to(xs_pad.device).long()
        with torch.no_grad():
            if list(layers) == [self.num_layers]:
                hs, olens = self._run_model(xs_pad, ilens, all_states=False)
                out = hs
            else:
                states, olens = self._run_model(xs_pad, ilens, all_states=True)
                out = torch.cat([states[i] for i in layers], dim=-1)
        out = out.masked_fill(make_pad_mask(olens, out, 1), 0.0)
        return out, olens

    def _run_model(self, xs_pad: torch.Tensor, ilens: torch.Tensor, all_states: bool):
        """Run the model; return last_hidden_state (B, T', D) or the N+1 hidden states."""
        max_len = int(ilens.max())
        dtype = next(self.model.parameters()).dtype
        xs = xs_pad[:, :max_len].to(dtype)
        valid = torch.arange(max_len, device=xs.device)[None, :] < ilens[:, None]
        if self.normalize_waveform:
            xs = _normalize(xs, valid, ilens)
        xs = xs.masked_fill(~valid, 0.0)
        attention_mask = valid.long() if self.use_attention_mask else None

        context = torch.no_grad() if self.freeze == "all" else nullcontext()
        with context:
            out = self.model(
                xs,
                attention_mask=attention_mask,
                output_hidden_states=all_states,
                return_dict=True,
            )
        hs = out.hidden_states if all_states else out.last_hidden_state
        n_frames = (hs[0] if all_states else hs).size(1)
        olens = self.model._get_feat_extract_output_lengths(ilens).long()
        olens = olens.clamp(min=0, max=n_frames)
        return hs, olens

    def _weighted_sum(self, stacked: torch.Tensor) -> torch.Tensor:
        """Softmax(layer_weights)-weighted sum over the first axis of (N+1, B, T, D)."""
        weights = torch.softmax(self.layer_weights, dim=0).to(stacked.dtype)
        return (weights[:, None, None, None] * stacked).sum(dim=0)

    def _forward_dumped(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """Encoder output from dumped hidden states (B, T, len(dumped_layers()) * D)."""
        if self.freeze != "all":
            raise ValueError(
                f"SSLEncoder got dumped hidden states (input of shape "
                f"{tuple(xs_pad.shape)}) but freeze={self.freeze!r}: only a fully "
                "frozen encoder (freeze: all) can read dumps, since training the "
                "model would change its hidden states; train from waveforms "
                "(extract_feats --extractor wave) or set freeze: all"
            )
        if self.apply_spec_augment:
            raise ValueError(
                "SSLEncoder got dumped hidden states but apply_spec_augment is "
                "true: the model's time masking is applied inside the model, "
                "which is not run on dumps; set apply_spec_augment: false or "
                "train from waveforms"
            )
        layers = self.dumped_layers()
        hidden = self._output_size
        expected = len(layers) * hidden
        got = xs_pad.size(-1)
        if got != expected:
            raise ValueError(
                f"the dumped hidden states do not match this encoder: feature "
                f"dim {got}, expected {expected} = {len(layers)} layer(s) "
                f"{layers} x hidden size {hidden} for layer={self.layer!r} of "
                f"{self.model_id}; dump them again with extract_feats "
                "--extractor ssl_states --train_config <this training config>"
            )
        ilens = ilens.to(xs_pad.device).long()
        dtype = next(self.model.parameters()).dtype
        xs = xs_pad[:, : int(ilens.max())].to(dtype)
        if self.layer == "weighted":
            b, t, _ = xs.shape
            stacked = xs.reshape(b, t, len(layers), hidden).permute(2, 0, 1, 3)
            hs = self._weighted_sum(stacked)
        else:
            hs = xs
        hs = hs.masked_fill(make_pad_mask(ilens, hs, 1), 0.0)
        return hs, ilens, None


def _normalize(xs: torch.Tensor, valid: torch.Tensor, ilens: torch.Tensor):
    """Zero-mean unit-variance per utterance over its valid samples.

    ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm`` with an attention mask:
    mean and population variance (numpy's ``var``, ddof 0) of the valid samples,
    ``(x - mean) / sqrt(var + 1e-7)``. The caller zeroes the padding.
    """
    mask = valid.to(xs.dtype)
    n = ilens.clamp(min=1).to(xs.dtype)[:, None]
    mean = (xs * mask).sum(dim=1, keepdim=True) / n
    var = (((xs - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return (xs - mean) / torch.sqrt(var + NORM_EPS)


def _normalization(
    setting: Optional[bool], model_name_or_path: Optional[str], local_files_only: bool
) -> Tuple[bool, str]:
    """Decide waveform normalisation: (normalise?, where the decision comes from)."""
    if setting is not None:
        return bool(setting), "set by normalize_waveform"
    if model_name_or_path is None:
        return False, "a model_config model has no preprocessor config"
    path = _find_preprocessor_config(model_name_or_path, local_files_only)
    if path is None:
        return False, f"no {PREPROCESSOR_CONFIG} found for {model_name_or_path}"
    return _read_do_normalize(path), f"do_normalize of {path}"


def _find_preprocessor_config(model_name_or_path: str, local_files_only: bool):
    """Path of a checkpoint's preprocessor config (directory or hub cache), or None."""
    from transformers.utils import cached_file

    directory = _checkpoint_dir(model_name_or_path)
    if directory is not None:
        path = os.path.join(directory, PREPROCESSOR_CONFIG)
        return path if os.path.isfile(path) else None
    return cached_file(
        model_name_or_path,
        PREPROCESSOR_CONFIG,
        local_files_only=local_files_only,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )


def _read_do_normalize(path: str) -> bool:
    """``do_normalize`` of a preprocessor config, as ``Wav2Vec2FeatureExtractor`` reads it."""
    from transformers import Wav2Vec2FeatureExtractor

    try:
        with open(path, encoding="utf-8") as f:
            fields = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path}: the checkpoint's preprocessor config is not valid JSON ({e}); fix "
            "it, or set encoder_conf.normalize_waveform to true or false"
        ) from e
    if not isinstance(fields, dict):
        raise ValueError(
            f"{path}: the checkpoint's preprocessor config must be a JSON object, got "
            f"{type(fields).__name__}"
        )
    try:
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
    except (OSError, TypeError, ValueError) as e:
        raise ValueError(
            f"{path}: cannot read the checkpoint's preprocessor config: {e}"
        ) from e
    value = extractor.do_normalize
    if not isinstance(value, bool):
        raise ValueError(
            f"{path}: do_normalize must be true or false, got {value!r}"
        )
    return value


def _checkpoint_dir(path: str) -> Optional[str]:
    """The local directory ``path`` names, or None for a hub name.

    A path that looks local (absolute, starting with ``.`` or ``~``, or existing)
    but is not a directory is an error.
    """
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        return expanded
    if os.path.isabs(expanded) or path.startswith((".", "~")) or os.path.exists(
        expanded
    ):
        raise FileNotFoundError(
            f"SSL model path {expanded} is not a directory"
        )
    return None


def _load_pretrained(path: str, local_files_only: bool):
    """Load a model from a local directory or a hub name."""
    from transformers import AutoModel

    directory = _checkpoint_dir(path)
    if directory is not None:
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise FileNotFoundError(
                f"SSL model directory {directory} has no config.json"
            )
        return AutoModel.from_pretrained(directory, local_files_only=True)
    logging.info(f"Loading SSL model {path} (local_files_only={local_files_only})")
    return AutoModel.from_pretrained(path, local_files_only=local_files_only)


def _build_from_config(model_config: Dict):
    """Build a randomly initialised model from a config dict."""
    from transformers import AutoConfig, AutoModel

    fields = dict(model_config)
    model_type = fields.pop("model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"model_config['model_type'] must be one of {SUPPORTED_MODEL_TYPES}, "
            f"got {model_type!r}"
        )
    for key, value in fields.items():
        if isinstance(value, list):
            fields[key] = tuple(value)
    config = AutoConfig.for_model(model_type, **fields)
    return AutoModel.from_config(config)


def _describe_config(model_config: Dict) -> str:
    """Short identity of a random-model config: type and main sizes."""
    keys = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
            "intermediate_size", "feat_extract_norm", "do_stable_layer_norm")
    return "{" + ", ".join(
        f"{k}: {model_config[k]}" for k in keys if k in model_config
    ) + "}"


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a model's parameter and buffer values.

    Names, shapes, dtypes and bytes of the state dict, in order; identifies the
    weights a hidden-state dump was made with.
    """
    import hashlib

    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:16]


def _check_model(model: torch.nn.Module):
    """Check the model has the parts SSLEncoder relies on."""
    ok = (
        hasattr(model, "feature_extractor")
        and hasattr(getattr(model, "encoder", None), "layers")
        and hasattr(model, "_get_feat_extract_output_lengths")
    )
    if not ok:
        raise ValueError(
            f"{type(model).__name__} is not a supported SSL speech model "
            f"(expected a wav2vec2 / HuBERT / WavLM base model)"
        )


def plot_layer_weights(weights: Union[torch.Tensor, Sequence[float]], path: str):
    """Save a bar chart of layer weights (index 0..N) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().float().tolist()
    weights = list(weights)
    fig = Figure(figsize=(max(4.0, 0.3 * len(weights) + 1.0), 3.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(weights)), weights)
    ax.set_xlabel("hidden state (0 = input to first layer)")
    ax.set_ylabel("weight")
    ax.set_xlim(-0.5, len(weights) - 0.5)
    fig.tight_layout()
    save_figure(fig, path, format=None, dpi=None)  # format from the extension of path


def published_size_configs() -> Dict[str, Dict]:
    """HF config dicts with the published sizes of common SSL models.

    Keys: ``wav2vec2-base``, ``hubert-large``, ``xls-r-300m``, ``xls-r-1b``.
    Each dict has ``model_type`` plus config fields and can be given as
    ``SSLEncoder(model_config=...)``. A CTC fine-tune has the encoder of its
    pretrained model (``AutoModel`` loads that encoder and drops the CTC output
    layer), so ``wav2vec2-base`` also describes ``facebook/wav2vec2-base-960h``,
    ``hubert-large`` ``facebook/hubert-large-ls960-ft`` and ``xls-r-1b``
    ``patrickvonplaten/wav2vec2-xls-r-1b-common_voice-tr-ft``.
    """
    conv = dict(
        conv_dim=(512,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        feat_extract_activation="gelu",
        hidden_act="gelu",
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
    )
    base = dict(
        conv,
        model_type="wav2vec2",
        num_hidden_layers=12,
        hidden_size=768,
        num_attention_heads=12,
        intermediate_size=3072,
        feat_extract_norm="group",
        conv_bias=False,
        do_stable_layer_norm=False,
    )
    large = dict(
        conv,
        model_type="wav2vec2",
        num_hidden_layers=24,
        hidden_size=1024,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        conv_bias=True,
        do_stable_layer_norm=True,
    )
    return {
        "wav2vec2-base": base,
        "hubert-large": dict(large, model_type="hubert"),
        "xls-r-300m": dict(large),
        "xls-r-1b": dict(
            large,
            num_hidden_layers=48,
            hidden_size=1280,
            num_attention_heads=16,
            intermediate_size=5120,
        ),
    }
