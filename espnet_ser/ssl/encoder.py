"""ESPnet encoder over a ``transformers`` wav2vec2 / HuBERT / WavLM model (16 kHz waveforms);
hidden state k as ``output_hidden_states`` (0: input to the first layer)."""

import json
import logging
import os
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from typeguard import typechecked

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet_ser.utils.plotting import agg_figure, save_figure

SUPPORTED_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm")
PREPROCESSOR_CONFIG = "preprocessor_config.json"
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
FREEZE_OPTIONS = ("none", "feature_encoder", "all")


class SSLEncoder(AbsEncoder):
    """Hidden states of a wav2vec2 / HuBERT / WavLM model.

    Exactly one of ``model_name_or_path`` (local directory or hub name) and ``model_config``
    (``{"model_type": ..., ...}``, random weights seeded by ``init_seed``) is given; ``input_size``
    is ignored. ``layer``: ``"last"``, an int in 0..N or ``"weighted"`` (learned softmax over all
    N+1 states). ``freeze``: ``"none"``, ``"feature_encoder"`` or ``"all"`` (no_grad; then a
    (B, T, F) input is read as dumped states), ``freeze_layers`` also the first K layers.
    ``normalize_waveform``: zero-mean unit-variance per utterance; None follows ``do_normalize``
    of the checkpoint's preprocessor config. ``use_attention_mask`` None: iff layer-norm CNN.
    """

    @typechecked
    def __init__(self, input_size: int = 1, model_name_or_path: Optional[str] = None,
                 model_config: Optional[Dict] = None, layer: Union[int, str] = "last",
                 freeze: str = "feature_encoder", freeze_layers: int = 0,
                 normalize_waveform: Optional[bool] = None, apply_spec_augment: bool = False,
                 use_attention_mask: Optional[bool] = None, local_files_only: bool = False,
                 init_seed: int = 0):
        super().__init__()
        if (model_name_or_path is None) == (model_config is None):
            raise ValueError("SSLEncoder needs exactly one of model_name_or_path and model_config")
        if freeze not in FREEZE_OPTIONS:
            raise ValueError(f"freeze must be one of {FREEZE_OPTIONS}, got {freeze!r}")
        # decided before the weights load, so a broken preprocessor config fails at once
        self.normalize_waveform, self.normalize_source = _normalization(
            normalize_waveform, model_name_or_path, local_files_only)
        if model_name_or_path is not None:
            self.model = _load_pretrained(model_name_or_path, local_files_only)
            self.model_id = f"model_name_or_path={model_name_or_path}"
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(init_seed))
                self.model = _build_from_config(model_config)
            self.model_id = "model_config=" + _describe_config(model_config)
        _check_model(self.model)
        config = self.model.config
        self.num_layers, self._output_size = int(config.num_hidden_layers), int(config.hidden_size)

        if isinstance(layer, str):
            if layer not in ("last", "weighted"):
                raise ValueError(f"layer must be 'last', 'weighted' or an int, got {layer!r}")
        elif not 0 <= layer <= self.num_layers:
            raise ValueError(
                f"layer={layer} is out of range: the model has {self.num_layers} transformer "
                f"layers, so layer must be in 0..{self.num_layers} (0 = input to the first layer)")
        self.layer = layer
        weighted = torch.nn.Parameter(torch.zeros(self.num_layers + 1))
        self.register_parameter("layer_weights", weighted if layer == "weighted" else None)
        if not 0 <= freeze_layers <= self.num_layers:
            raise ValueError(f"freeze_layers={freeze_layers} is out of range: the model has "
                             f"{self.num_layers} transformer layers")
        self.freeze, self.freeze_layers = freeze, freeze_layers
        logging.info(f"SSLEncoder ({self.model_id}): normalize_waveform="
                     f"{self.normalize_waveform} ({self.normalize_source})")
        self.apply_spec_augment = apply_spec_augment
        self.use_attention_mask = (getattr(config, "feat_extract_norm", None) == "layer"
                                   if use_attention_mask is None else use_attention_mask)
        if not apply_spec_augment:
            config.apply_spec_augment = False
            config.mask_time_prob = 0.0
            masked = getattr(self.model, "masked_spec_embed", None)
            if isinstance(masked, torch.nn.Parameter):
                masked.requires_grad_(False)  # unused without masking

        self._frozen_names: List[str] = []
        if freeze == "all":
            self._frozen_names.append("model")
        else:
            if freeze == "feature_encoder":
                self.model.feature_extractor._freeze_parameters()
                self._frozen_names.append("model.feature_extractor")
            self._frozen_names += [f"model.encoder.layers.{i}" for i in range(freeze_layers)]
        for name in self._frozen_names:
            self.get_submodule(name).requires_grad_(False)
        self.train(self.training)

    def output_size(self) -> int:
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
        weights = self.get_layer_weights()
        if weights is None:
            return f"SSLEncoder layer={self.layer!r} (no learned layer weights)"
        lines = ["SSLEncoder layer weights (0 = input to first layer):"]
        lines += [f"  layer {i:2d}: {w:.4f}" for i, w in enumerate(weights.tolist())]
        return "\n".join(lines)

    def dumped_layers(self) -> List[int]:
        """Hidden-state indices a dump for this encoder concatenates."""
        if self.layer == "last":
            return [self.num_layers]
        if self.layer == "weighted":
            return list(range(self.num_layers + 1))
        return [int(self.layer)]

    def dump_dim(self) -> int:
        return len(self.dumped_layers()) * self._output_size

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states=None
                ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """(B, T) waveforms or (B, T, F) dumps -> hs (B, T', D) zero beyond olens, olens, None."""
        if xs_pad.dim() == 3:
            hs, olens = self._read_dump(xs_pad, ilens)
        elif xs_pad.dim() == 2:
            hs, olens = self._states(xs_pad, ilens, self.dumped_layers())
        else:
            raise ValueError(f"SSLEncoder expects (B, T) waveforms or (B, T, F) dumped hidden "
                             f"states, got shape {tuple(xs_pad.shape)}")
        if self.layer == "weighted":
            b, t, _ = hs.shape
            stacked = hs.reshape(b, t, self.num_layers + 1, self._output_size).permute(2, 0, 1, 3)
            weights = torch.softmax(self.layer_weights, dim=0).to(hs.dtype)
            hs = (weights[:, None, None, None] * stacked).sum(dim=0)
        return hs, olens, None

    def hidden_states(self, xs_pad: torch.Tensor, ilens: torch.Tensor, layers: Sequence[int]
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """States ``layers`` of waveforms concatenated as dumped (B, T', len(layers) * D),
        zero beyond olens, and olens; always under no_grad."""
        with torch.no_grad():
            return self._states(xs_pad, ilens, layers)

    def _states(self, xs_pad, ilens, layers):
        ilens = ilens.to(xs_pad.device).long()
        max_len = int(ilens.max())
        xs = xs_pad[:, :max_len].to(next(self.model.parameters()).dtype)
        valid = torch.arange(max_len, device=xs.device)[None, :] < ilens[:, None]
        if self.normalize_waveform:
            xs = _normalize(xs, valid, ilens)
        xs = xs.masked_fill(~valid, 0.0)
        last_only = list(layers) == [self.num_layers]
        with torch.no_grad() if self.freeze == "all" else nullcontext():
            out = self.model(xs, attention_mask=valid.long() if self.use_attention_mask else None,
                             output_hidden_states=not last_only, return_dict=True)
        hs = (out.last_hidden_state if last_only
              else torch.cat([out.hidden_states[i] for i in layers], dim=-1))
        olens = self.model._get_feat_extract_output_lengths(ilens).long().clamp(0, hs.size(1))
        return hs.masked_fill(make_pad_mask(olens, hs, 1), 0.0), olens

    def _read_dump(self, xs_pad, ilens):
        if self.freeze != "all":
            raise ValueError(
                f"SSLEncoder got dumped hidden states (input of shape {tuple(xs_pad.shape)}) but "
                f"freeze={self.freeze!r}: only a fully frozen encoder (freeze: all) can read "
                "dumps, since training the model would change its hidden states; train from "
                "waveforms (extract_feats --extractor wave) or set freeze: all")
        if self.apply_spec_augment:
            raise ValueError(
                "SSLEncoder got dumped hidden states but apply_spec_augment is true: the model's "
                "time masking is applied inside the model, which is not run on dumps; set "
                "apply_spec_augment: false or train from waveforms")
        layers, got = self.dumped_layers(), xs_pad.size(-1)
        if got != self.dump_dim():
            raise ValueError(
                f"the dumped hidden states do not match this encoder: feature dim {got}, "
                f"expected {self.dump_dim()} = {len(layers)} layer(s) {layers} x hidden size "
                f"{self._output_size} for layer={self.layer!r} of {self.model_id}; dump them "
                "again with extract_feats --extractor ssl_states --train_config <this training "
                "config>")
        ilens = ilens.to(xs_pad.device).long()
        xs = xs_pad[:, : int(ilens.max())].to(next(self.model.parameters()).dtype)
        return xs.masked_fill(make_pad_mask(ilens, xs, 1), 0.0), ilens


def _normalize(xs: torch.Tensor, valid: torch.Tensor, ilens: torch.Tensor):
    """``zero_mean_unit_var_norm`` over the valid samples (population variance, eps 1e-7)."""
    mask = valid.to(xs.dtype)
    n = ilens.clamp(min=1).to(xs.dtype)[:, None]
    mean = (xs * mask).sum(dim=1, keepdim=True) / n
    var = (((xs - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return (xs - mean) / torch.sqrt(var + NORM_EPS)


def _normalization(setting: Optional[bool], model_name_or_path: Optional[str],
                   local_files_only: bool) -> Tuple[bool, str]:
    """(normalise the waveform?, where the decision comes from)."""
    if setting is not None:
        return bool(setting), "set by normalize_waveform"
    if model_name_or_path is None:
        return False, "a model_config model has no preprocessor config"
    from transformers.utils import cached_file

    directory = _checkpoint_dir(model_name_or_path)
    if directory is not None:
        path = os.path.join(directory, PREPROCESSOR_CONFIG)
        path = path if os.path.isfile(path) else None
    else:
        path = cached_file(model_name_or_path, PREPROCESSOR_CONFIG,
                           local_files_only=local_files_only,
                           _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    if path is None:
        return False, f"no {PREPROCESSOR_CONFIG} found for {model_name_or_path}"
    return _read_do_normalize(path), f"do_normalize of {path}"


def _read_do_normalize(path: str) -> bool:
    """``do_normalize`` of a preprocessor config, as ``Wav2Vec2FeatureExtractor`` reads it."""
    from transformers import Wav2Vec2FeatureExtractor

    try:
        with open(path, encoding="utf-8") as f:
            fields = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: the checkpoint's preprocessor config is not valid JSON ({e}); "
                         "fix it, or set encoder_conf.normalize_waveform to true or false") from e
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: the checkpoint's preprocessor config must be a JSON object, "
                         f"got {type(fields).__name__}")
    try:
        value = Wav2Vec2FeatureExtractor.from_pretrained(path).do_normalize
    except (OSError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the checkpoint's preprocessor config: {e}") from e
    if not isinstance(value, bool):
        raise ValueError(f"{path}: do_normalize must be true or false, got {value!r}")
    return value


def _checkpoint_dir(path: str) -> Optional[str]:
    """The local directory ``path`` names, None for a hub name; error for a local non-directory."""
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        return expanded
    if os.path.isabs(expanded) or path.startswith((".", "~")) or os.path.exists(expanded):
        raise FileNotFoundError(f"SSL model path {expanded} is not a directory")
    return None


def _load_pretrained(path: str, local_files_only: bool):
    from transformers import AutoModel

    directory = _checkpoint_dir(path)
    if directory is not None:
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise FileNotFoundError(f"SSL model directory {directory} has no config.json")
        return AutoModel.from_pretrained(directory, local_files_only=True)
    logging.info(f"Loading SSL model {path} (local_files_only={local_files_only})")
    return AutoModel.from_pretrained(path, local_files_only=local_files_only)


def _build_from_config(model_config: Dict):
    from transformers import AutoConfig, AutoModel

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in model_config.items()}
    model_type = fields.pop("model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"model_config['model_type'] must be one of {SUPPORTED_MODEL_TYPES}, "
                         f"got {model_type!r}")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **fields))


def _describe_config(model_config: Dict) -> str:
    keys = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
            "intermediate_size", "feat_extract_norm", "do_stable_layer_norm")
    return "{" + ", ".join(f"{k}: {model_config[k]}" for k in keys if k in model_config) + "}"


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of the state dict's names, shapes, dtypes and bytes."""
    import hashlib

    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:16]


def _check_model(model: torch.nn.Module):
    if not (hasattr(model, "feature_extractor")
            and hasattr(getattr(model, "encoder", None), "layers")
            and hasattr(model, "_get_feat_extract_output_lengths")):
        raise ValueError(f"{type(model).__name__} is not a supported SSL speech model "
                         "(expected a wav2vec2 / HuBERT / WavLM base model)")


def plot_layer_weights(weights: Union[torch.Tensor, Sequence[float]], path: str):
    """Save a bar chart of layer weights (index 0..N) to ``path``."""
    weights = (weights.detach().cpu().float().tolist() if isinstance(weights, torch.Tensor)
               else list(weights))
    fig = agg_figure((max(4.0, 0.3 * len(weights) + 1.0), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(weights)), weights)
    ax.set_xlabel("hidden state (0 = input to first layer)")
    ax.set_ylabel("weight")
    ax.set_xlim(-0.5, len(weights) - 0.5)
    fig.tight_layout()
    save_figure(fig, path, format=None, dpi=None)  # format from the extension of path


def _sizes(layers, hidden, heads, ffn, norm, stable, model_type="wav2vec2"):
    return dict(model_type=model_type, num_hidden_layers=layers, hidden_size=hidden,
                num_attention_heads=heads, intermediate_size=ffn, feat_extract_norm=norm,
                conv_bias=stable, do_stable_layer_norm=stable,
                conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                conv_stride=(5, 2, 2, 2, 2, 2, 2), feat_extract_activation="gelu",
                hidden_act="gelu", num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16)


def published_size_configs() -> Dict[str, Dict]:
    """``SSLEncoder(model_config=...)`` dicts of the published sizes (also of the CTC fine-tunes,
    whose CTC layer ``AutoModel`` drops)."""
    return {
        "wav2vec2-base": _sizes(12, 768, 12, 3072, "group", False),
        "hubert-base": _sizes(12, 768, 12, 3072, "group", False, "hubert"),
        "hubert-large": _sizes(24, 1024, 16, 4096, "layer", True, "hubert"),
        "xls-r-300m": _sizes(24, 1024, 16, 4096, "layer", True),
        "xls-r-1b": _sizes(48, 1280, 16, 5120, "layer", True),
    }
