"""Dump extractors for SSL encoders: the mono waveform (:class:`WaveExtractor`) or the hidden
states of a frozen training config's encoder (:class:`SSLStatesExtractor`); the dump config
records the model and its fingerprint, so a dump never mixes parts of two models."""

import json
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from espnet_ser.features.extractor import (Extractor, FeatureError, check_finite,
                                           read_yaml_mapping, waveform_input)

PathLike = Union[str, Path]
KALDI_SPEECH_FEATURE = 1  # kaldiio's number for copy-feats --compress true
SSL_FS = 16000


class WaveExtractor(Extractor):
    """The (resampled) mono waveform as a 1-D float32 vector."""

    name = "wave"
    output_dims: Tuple[int, ...] = ()

    def __init__(self, fs: int = SSL_FS):
        if int(fs) <= 0:
            raise FeatureError(f"fs must be positive, got {fs}")
        self.fs = int(fs)
        self.conf = {"extractor": "wave", "fs": self.fs}

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        return waveform_input(wave)


def _check_frozen(enc: Dict, where: str) -> None:
    """FeatureError unless the SSLEncoder arguments ``enc`` (named ``where``) freeze it all."""
    freeze = enc.get("freeze", "feature_encoder")
    if freeze != "all":
        raise FeatureError(f"{where}: encoder_conf.freeze is {freeze!r}; hidden states can only "
                           "be dumped for a fully frozen encoder (freeze: all), since training any "
                           "part of the model changes them. Train this config from waveforms "
                           "(--extractor wave)")
    if enc.get("apply_spec_augment", False):
        raise FeatureError(f"{where}: encoder_conf.apply_spec_augment is true; the model's time "
                           "masking cannot be applied to dumped hidden states. Set it to false or "
                           "train from waveforms (--extractor wave)")


def load_train_config(path: PathLike) -> Dict:
    """A training YAML that allows hidden-state dumps (``encoder: ssl``, frozen, no masking,
    ``normalize: none``), else FeatureError."""
    conf = read_yaml_mapping(path, "no such training config",
                             "a mapping (an ESPnet training config)")
    if conf.get("encoder") != "ssl":
        raise FeatureError(f"{path}: encoder is {conf.get('encoder')!r}; hidden-state dumps "
                           "need 'encoder: ssl'")
    _check_frozen(conf.get("encoder_conf") or {}, str(path))
    if conf.get("specaug") not in (None, "none"):
        raise FeatureError(f"{path}: specaug {conf.get('specaug')!r} would mask the dumped hidden "
                           "states, not the waveforms the model was configured for; remove it")
    normalize = conf.get("normalize", "utterance_mvn")  # SERTask's default
    if normalize not in (None, "none"):
        raise FeatureError(f"{path}: normalize is {normalize!r} (utterance_mvn when not given); "
                           "with dumped hidden states it would normalise the states instead of the "
                           "waveform. Set 'normalize: none' (use encoder_conf.normalize_waveform)")
    return conf


class SSLStatesExtractor(Extractor):
    """Hidden states of a frozen :class:`SSLEncoder(**encoder_conf)`. ``disable_mkldnn``: oneDNN's
    per-shape kernel cache grows with each length; ``compress``: lossy 8-bit matrices."""

    name = "ssl_states"

    def __init__(self, encoder_conf: Dict, device: str = "cpu", where: str = "SSLStatesExtractor",
                 disable_mkldnn: bool = True, compress: bool = False):
        from espnet_ser.ssl.encoder import SSLEncoder, model_fingerprint

        _check_frozen(encoder_conf, where)
        encoder_conf = {k: v for k, v in encoder_conf.items() if k != "input_size"}
        try:
            encoder = SSLEncoder(**encoder_conf)
        except (TypeError, ValueError, OSError) as e:
            raise FeatureError(f"{where}: cannot build the SSL encoder: {e}") from e
        self.encoder, self.device = encoder.to(device).eval(), device
        self.disable_mkldnn, self.fs = disable_mkldnn, SSL_FS
        self.layers, self.hidden_size = encoder.dumped_layers(), encoder.output_size()
        model = encoder.model
        conf = {"extractor": "ssl_states", "fs": self.fs}
        if encoder_conf.get("model_name_or_path") is not None:
            conf["model_name_or_path"] = str(encoder_conf["model_name_or_path"])
        else:
            # tuples -> lists (for yaml.safe_dump and a stable comparison)
            conf["model_config"] = json.loads(json.dumps(encoder_conf["model_config"]))
        conf.update(model_type=str(model.config.model_type),
                    model_fingerprint=model_fingerprint(model),
                    num_hidden_layers=int(encoder.num_layers), hidden_size=int(self.hidden_size),
                    layers=[int(i) for i in self.layers], dim=int(encoder.dump_dim()),
                    normalize_waveform=bool(encoder.normalize_waveform),
                    use_attention_mask=bool(encoder.use_attention_mask))
        self.compression_method = KALDI_SPEECH_FEATURE if compress else None
        if compress:
            conf["compress"] = "kaldi_speech_feature"
        self.conf, self.min_samples = conf, _min_samples(model)

    @classmethod
    def from_train_config(cls, path: PathLike, device: str = "cpu", compress: bool = False
                          ) -> "SSLStatesExtractor":
        conf = load_train_config(path).get("encoder_conf") or {}
        return cls(conf, device=device, where=str(path), compress=compress)

    @property
    def dim(self) -> int:
        return int(self.conf["dim"])

    @property
    def output_dims(self) -> Tuple[int, ...]:
        return (self.dim,)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Float32 hidden states (frames, len(layers) * hidden) of a 1-D 16 kHz waveform."""
        wave = waveform_input(wave, self.min_samples,
                              f"the model needs at least {self.min_samples} for one frame")
        x = torch.from_numpy(wave)[None].to(self.device)
        lens = torch.tensor([x.shape[1]], dtype=torch.long, device=self.device)
        previous = torch.backends.mkldnn.enabled
        try:
            if self.disable_mkldnn:
                torch.backends.mkldnn.enabled = False
            with torch.no_grad():
                states, olens = self.encoder.hidden_states(x, lens, self.layers)
        finally:
            torch.backends.mkldnn.enabled = previous
        out = check_finite(states[0, : int(olens[0])].float().cpu().numpy(), "the hidden states")
        return np.ascontiguousarray(out, dtype=np.float32)


def _min_samples(model) -> int:
    """Fewest samples for which the convolutional feature extractor gives one frame."""
    n = 1
    for kernel, stride in reversed(list(zip(model.config.conv_kernel, model.config.conv_stride))):
        n = (n - 1) * int(stride) + int(kernel)
    return n


def make_extractor(kind: str, fs: Optional[int] = None, train_config: Optional[PathLike] = None,
                   device: str = "cpu", compress: bool = False) -> Extractor:
    """The :class:`WaveExtractor` or :class:`SSLStatesExtractor` ``kind`` names."""
    if kind == "wave":
        if compress:
            raise FeatureError("compression is for hidden-state dumps (--extractor ssl_states)")
        return WaveExtractor(fs if fs is not None else SSL_FS)
    if kind == "ssl_states":
        if train_config is None:
            raise FeatureError("--extractor ssl_states needs --train_config")
        if fs is not None and int(fs) != SSL_FS:
            raise FeatureError(f"SSL models take {SSL_FS} Hz audio; --fs {fs} given")
        return SSLStatesExtractor.from_train_config(train_config, device=device, compress=compress)
    raise FeatureError(f"unknown extractor {kind!r}")
