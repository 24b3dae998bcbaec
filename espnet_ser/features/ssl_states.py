"""Dumps for self-supervised (SSL) encoders: waveforms and frozen hidden states.

Two extractors for the dump machinery of :mod:`espnet_ser.features.fbank`
(:func:`~espnet_ser.features.fbank.extract_part`, ``merge_parts``,
``subset_dump``); both are run by ``extract_feats.py --extractor ...``.

* :class:`WaveExtractor` (``--extractor wave --fs 16000``) writes the waveform itself
  (mono, resampled to ``fs`` with ``--resample true``) as a 1-D float32 Kaldi vector.
  ``feats_shape`` lines are ``<utt> <samples>`` (ESPnet's shape format for 1-D data).
  ESPnet's ``kaldi_ark`` loader returns the vectors and ``CommonCollateFn`` pads them to
  (B, T) with ``speech_lengths`` in samples, the input of ``encoder: ssl``.
  Dump config (``fbank.yaml``)::

      extractor: wave
      fs: 16000

* :class:`SSLStatesExtractor` (``--extractor ssl_states --train_config conf/x.yaml``)
  builds the :class:`~espnet_ser.ssl.encoder.SSLEncoder` of a training config
  (``encoder: ssl``, ``encoder_conf`` with ``freeze: all``), runs it on one utterance
  at a time under ``torch.no_grad`` (memory does not grow with the number of
  utterances) and writes a float32 matrix (frames, n_layers * hidden): the hidden
  states ``SSLEncoder.dumped_layers()`` (``last`` -> [N], ``k`` -> [k], ``weighted``
  -> [0..N]) concatenated in hidden-state index order. ``feats_shape`` lines are
  ``<utt> <frames>,<n_layers * hidden>``. Training with the same config reads
  ``dump/ssl_states/<set>/feats.scp`` (``kaldi_ark``) instead of the waveforms; the
  encoder takes 3-D input as dumped states. Dump config (``fbank.yaml``)::

      extractor: ssl_states
      fs: 16000
      model_name_or_path: facebook/wav2vec2-base   # or model_config: {...}
      model_type: wav2vec2
      model_fingerprint: 3f9c...                   # sha256 of the weights (16 hex)
      num_hidden_layers: 12
      hidden_size: 768
      layers: [0, 1, ..., 12]                      # hidden-state indices dumped
      dim: 9984                                    # len(layers) * hidden_size
      normalize_waveform: true                     # the encoder's decision (checkpoint or YAML)
      use_attention_mask: false

  With ``--compress true`` the matrices are Kaldi compressed (8 bits a value, about a
  quarter of the size; lossy) and the config gains ``compress: kaldi_speech_feature``.

  ``extract_part`` refuses to add to a dump made with another config (another model,
  other weights, another layer set, ...) unless ``--overwrite true``, and the merge
  refuses parts made with different configs.

A model built from ``model_config`` (random weights, for tests and benchmarks) draws
its weights from ``encoder_conf.init_seed`` (default 0) apart from the global RNG, so
training builds the same model; the fingerprint in the dump config identifies it.
"""

from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
import yaml

from espnet_ser.features.fbank import FeatureError, check_finite, waveform_input

PathLike = Union[str, Path]
# kaldiio's number for Kaldi's kSpeechFeature compression (copy-feats --compress true)
KALDI_SPEECH_FEATURE = 1

SSL_FS = 16000


class WaveExtractor:
    """Extractor writing the (resampled) mono waveform as a 1-D float32 vector."""

    compression_method = None  # waveforms are written as they are

    def __init__(self, fs: int = SSL_FS):
        if int(fs) <= 0:
            raise FeatureError(f"fs must be positive, got {fs}")
        self.fs = int(fs)
        self.conf = {"extractor": "wave", "fs": self.fs}
        self.min_samples = 1

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        return waveform_input(wave)


def _plain(value):
    """Tuples -> lists, recursively (for yaml.safe_dump and a stable comparison)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def load_train_config(path: PathLike) -> Dict:
    """Read a training YAML and check it allows hidden-state dumps; return it.

    Errors (naming the config): no ``encoder: ssl``; ``encoder_conf.freeze`` is not
    ``all``; ``apply_spec_augment`` is true; a ``specaug``; ``normalize`` is not
    ``none``/null. (Training must also get ``input_size`` -- the recipes pass
    ``--input_size 1`` -- so that no frontend runs before the encoder.)
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: no such training config")
    with path.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise FeatureError(f"{path}: expected a mapping (an ESPnet training config)")
    if conf.get("encoder") != "ssl":
        raise FeatureError(
            f"{path}: encoder is {conf.get('encoder')!r}; hidden-state dumps need "
            "'encoder: ssl'"
        )
    enc = conf.get("encoder_conf") or {}
    freeze = enc.get("freeze", "feature_encoder")
    if freeze != "all":
        raise FeatureError(
            f"{path}: encoder_conf.freeze is {freeze!r}; hidden states can only be dumped "
            "for a fully frozen encoder (freeze: all), since training any part of the "
            "model changes them. Train this config from waveforms (--extractor wave)"
        )
    if enc.get("apply_spec_augment", False):
        raise FeatureError(
            f"{path}: encoder_conf.apply_spec_augment is true; the model's time masking "
            "cannot be applied to dumped hidden states. Set it to false or train from "
            "waveforms (--extractor wave)"
        )
    if conf.get("specaug") not in (None, "none"):
        raise FeatureError(
            f"{path}: specaug {conf.get('specaug')!r} would mask the dumped hidden states, "
            "not the waveforms the model was configured for; remove it for dumps"
        )
    normalize = conf.get("normalize", "utterance_mvn")  # SERTask's default
    if normalize not in (None, "none"):
        raise FeatureError(
            f"{path}: normalize is {normalize!r} (utterance_mvn when not given); with "
            "dumped hidden states it would normalise the states instead of the waveform. "
            "Set 'normalize: none' (use encoder_conf.normalize_waveform for waveforms)"
        )
    return conf


class SSLStatesExtractor:
    """Extractor writing the hidden states a frozen :class:`SSLEncoder` config needs.

    Args:
        encoder_conf: ``SSLEncoder`` arguments (``freeze`` must be ``"all"``).
        device: Torch device to run the model on.
        where: Name of the config, for error messages.
        disable_mkldnn: Run CPU convolutions without oneDNN, whose per-shape kernel
            cache makes memory grow with the number of distinct utterance lengths.
        compress: Write Kaldi compressed matrices (kaldiio ``compression_method`` 1,
            the ``kSpeechFeature`` method of Kaldi's ``copy-feats --compress true``:
            8 bits a value, quantised per column between its percentiles), about a
            quarter of the float32 size. Lossy; recorded as ``compress:
            kaldi_speech_feature`` in the dump config. Readers (kaldiio, ESPnet's
            ``kaldi_ark`` loader) decompress to float32 on load.
    """

    def __init__(
        self,
        encoder_conf: Dict,
        device: str = "cpu",
        where: str = "encoder_conf",
        disable_mkldnn: bool = True,
        compress: bool = False,
    ):
        from espnet_ser.ssl.encoder import SSLEncoder, model_fingerprint

        encoder_conf = dict(encoder_conf)
        if encoder_conf.get("freeze", "feature_encoder") != "all":
            raise FeatureError(
                f"{where}: freeze is {encoder_conf.get('freeze', 'feature_encoder')!r}; "
                "hidden states can only be dumped for freeze: all"
            )
        if encoder_conf.get("apply_spec_augment", False):
            raise FeatureError(f"{where}: apply_spec_augment must be false for dumps")
        encoder_conf.pop("input_size", None)
        try:
            encoder = SSLEncoder(**encoder_conf)
        except (TypeError, ValueError, OSError) as e:
            raise FeatureError(f"{where}: cannot build the SSL encoder: {e}") from e
        self.encoder = encoder.to(device).eval()
        self.device = device
        self.disable_mkldnn = disable_mkldnn
        self.layers = encoder.dumped_layers()
        self.hidden_size = encoder.output_size()
        self.fs = SSL_FS
        model = encoder.model
        conf = {"extractor": "ssl_states", "fs": self.fs}
        if encoder_conf.get("model_name_or_path") is not None:
            conf["model_name_or_path"] = str(encoder_conf["model_name_or_path"])
        else:
            conf["model_config"] = _plain(encoder_conf["model_config"])
        conf.update(
            model_type=str(model.config.model_type),
            model_fingerprint=model_fingerprint(model),
            num_hidden_layers=int(encoder.num_layers),
            hidden_size=int(self.hidden_size),
            layers=[int(i) for i in self.layers],
            dim=int(encoder.dump_dim()),
            normalize_waveform=bool(encoder.normalize_waveform),
            use_attention_mask=bool(encoder.use_attention_mask),
        )
        # kaldiio compression method for extract_part; None writes float32 matrices
        self.compression_method = KALDI_SPEECH_FEATURE if compress else None
        if compress:
            conf["compress"] = "kaldi_speech_feature"
        self.conf = conf
        self.min_samples = _min_samples(model)

    @classmethod
    def from_train_config(
        cls, path: PathLike, device: str = "cpu", compress: bool = False
    ) -> "SSLStatesExtractor":
        conf = load_train_config(path)
        return cls(
            conf.get("encoder_conf") or {}, device=device, where=str(path), compress=compress,
        )

    @property
    def dim(self) -> int:
        return int(self.conf["dim"])

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Float32 hidden states (frames, len(layers) * hidden) of a 1-D 16 kHz waveform."""
        wave = waveform_input(
            wave, self.min_samples, f"the model needs at least {self.min_samples} for one frame"
        )
        x = torch.from_numpy(wave)[None].to(self.device)
        lens = torch.tensor([x.shape[1]], dtype=torch.long, device=self.device)
        # oneDNN (mkldnn) caches convolution kernels per input shape, so with utterances
        # of many lengths the memory grows with the number of utterances; the native
        # CPU convolution keeps it flat (and is no slower for one utterance at a time).
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
    for kernel, stride in reversed(
        list(zip(model.config.conv_kernel, model.config.conv_stride))
    ):
        n = (n - 1) * int(stride) + int(kernel)
    return n


def make_extractor(
    kind: str,
    fs: Optional[int] = None,
    train_config: Optional[PathLike] = None,
    device: str = "cpu",
    compress: bool = False,
):
    """``wave`` -> :class:`WaveExtractor`; ``ssl_states`` -> :class:`SSLStatesExtractor`
    (``compress``: Kaldi compressed matrices, hidden states only)."""
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
