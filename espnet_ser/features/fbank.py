"""Log-mel filterbanks of ESPnet's DefaultFrontend (what a stock ESPnet model computes from
raw waves) and GST-Tacotron's reference-encoder input (``normalization: tacotron``)."""

from pathlib import Path
from typing import Dict, Mapping, Tuple, Union

import numpy as np
import torch

from espnet_ser.features.audio import AudioError, load_utterance, read_utterance  # noqa: F401
from espnet_ser.features.extractor import (Extractor, FeatureError, check_finite,
                                           read_yaml_mapping, waveform_input)

PathLike = Union[str, Path]

FRONTEND_KEYS = ("fs", "n_fft", "win_length", "hop_length", "window", "center", "normalized",
                 "onesided", "n_mels", "fmin", "fmax", "htk")
MEL_NORMALIZATIONS = ("log", "tacotron")
# GST-Tacotron's values (trim_top_db null: no trim)
TACOTRON_DEFAULTS = {"preemphasis": 0.97, "ref_db": 20.0, "max_db": 100.0, "trim_top_db": None}
NORMALIZATION_KEYS = ("normalization",) + tuple(TACOTRON_DEFAULTS)


def load_fbank_config(path: PathLike) -> Dict:
    """Read a filterbank YAML (see ``conf/fbank.yaml``); unknown keys are errors."""
    conf = read_yaml_mapping(path, "no such config file", "a mapping of frontend arguments")
    known = FRONTEND_KEYS + NORMALIZATION_KEYS
    unknown = sorted(set(conf) - set(known))
    if unknown:
        raise FeatureError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {' '.join(known)}")
    try:
        mel_normalization(conf)
    except FeatureError as e:
        raise FeatureError(f"{path}: {e}") from None
    return conf


def mel_normalization(conf: Mapping) -> Dict:
    """``{"normalization": "log"}`` or the checked tacotron options with defaults."""
    kind = conf.get("normalization", "log")
    if kind not in MEL_NORMALIZATIONS:
        raise FeatureError(f"normalization: {kind!r}; expected one of "
                           f"{', '.join(MEL_NORMALIZATIONS)}")
    given = {k: conf[k] for k in TACOTRON_DEFAULTS if k in conf}
    if kind != "tacotron":
        if given:
            raise FeatureError(f"{', '.join(sorted(given))} only apply with normalization: "
                               f"tacotron (normalization is {kind})")
        return {"normalization": kind}
    opts = dict(TACOTRON_DEFAULTS, **given)
    for key in ("preemphasis", "ref_db", "max_db"):
        if isinstance(opts[key], bool) or not isinstance(opts[key], (int, float)):
            raise FeatureError(f"{key}: expected a number, got {opts[key]!r}")
    if not 0 <= opts["preemphasis"] < 1:
        raise FeatureError(f"preemphasis: {opts['preemphasis']} is outside [0, 1)")
    if opts["max_db"] <= 0:
        raise FeatureError(f"max_db: {opts['max_db']} must be positive")
    top = opts["trim_top_db"]
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, float)) or top <= 0):
        raise FeatureError(f"trim_top_db: {top!r}; expected a positive number of dB or null "
                           "(no trimming)")
    return dict({"normalization": kind},
                **{k: (float(v) if v is not None else None) for k, v in opts.items()})


class FbankExtractor(Extractor):
    """Log-mel filterbanks of DefaultFrontend(``conf``); ``normalization: tacotron`` builds a
    :class:`GSTFbankExtractor`."""

    name = "fbank"

    def __new__(cls, **conf):
        if cls is FbankExtractor and conf.get("normalization") == "tacotron":
            cls = GSTFbankExtractor
        return super().__new__(cls)

    def __init__(self, **conf):
        from espnet2.asr.frontend.default import DefaultFrontend

        unknown = sorted(set(conf) - set(FRONTEND_KEYS) - set(NORMALIZATION_KEYS))
        if unknown:
            raise FeatureError(f"unknown filterbank argument(s): {', '.join(unknown)}")
        self.normalization = mel_normalization(conf)
        conf = {k: v for k, v in conf.items() if k in FRONTEND_KEYS}
        try:  # frontend_conf=None: no WPE/beamformer
            frontend = DefaultFrontend(frontend_conf=None, **conf)
        except Exception as e:  # typeguard / value errors from ESPnet
            raise FeatureError(f"invalid filterbank config {conf}: {e}") from e
        self.frontend = frontend.eval()  # one utterance at a time, so no padding effects
        self.conf = {k: conf[k] for k in FRONTEND_KEYS if k in conf}  # the dump config
        if self.normalization["normalization"] != "log":  # the default is not written
            self.conf.update(self.normalization)
        self.fs = int(frontend.logmel.mel_options["sr"])
        self.n_mels, stft = frontend.output_size(), frontend.stft
        self.n_fft, self.hop_length, self.center = stft.n_fft, stft.hop_length, stft.center
        # reflect padding needs more than n_fft / 2 samples
        self.min_samples = self.n_fft // 2 + 1 if self.center else self.n_fft

    @classmethod
    def from_yaml(cls, path: PathLike, **overrides) -> "FbankExtractor":
        conf = load_fbank_config(path)
        conf.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**conf)

    @property
    def output_dims(self) -> Tuple[int, ...]:
        return (self.n_mels,)

    def num_frames(self, num_samples: int) -> int:
        """Number of frames of a waveform of ``num_samples`` samples (without trimming)."""
        if self.center:
            return num_samples // self.hop_length + 1
        return (num_samples - self.n_fft) // self.hop_length + 1

    def _input(self, wave) -> np.ndarray:
        return waveform_input(wave, self.min_samples,
                              f"at least {self.min_samples} are needed for n_fft={self.n_fft}")

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Float32 features (frames, n_mels) of a 1-D waveform."""
        x = torch.from_numpy(self._input(wave))[None]
        with torch.no_grad():
            feats, lens = self.frontend(x, torch.tensor([x.shape[1]], dtype=torch.long))
        out = feats[0, : int(lens[0])].cpu().numpy().astype(np.float32, copy=False)
        # LogMel floors the mel energies (1e-10), so NaN/inf can only come from the input
        return check_finite(out, "the features")


class GSTFbankExtractor(FbankExtractor):
    """GST-Tacotron's input: optionally trimmed (librosa), pre-emphasised, mel of the STFT
    magnitude, ``clip((20 log10(max(mel, 1e-5)) - ref_db + max_db) / max_db, 1e-8, 1)``."""

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        wave, opts = self._input(wave), self.normalization
        if opts["trim_top_db"] is not None:
            import librosa

            trimmed, _ = librosa.effects.trim(wave, top_db=opts["trim_top_db"])
            if len(trimmed) >= self.min_samples:
                wave = trimmed
        wave = np.concatenate([wave[:1], wave[1:] - np.float32(opts["preemphasis"]) * wave[:-1]])
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        with torch.no_grad():
            spec, _ = self.frontend.stft(x, torch.tensor([x.shape[1]], dtype=torch.long))
            magnitude = spec.pow(2).sum(-1).sqrt()  # (1, frames, freq)
            mel = torch.matmul(magnitude, self.frontend.logmel.melmat)  # (1, frames, n_mels)
            db = 20.0 * torch.log10(torch.clamp(mel, min=1e-5))
            out = torch.clamp((db - opts["ref_db"] + opts["max_db"]) / opts["max_db"], 1e-8, 1.0)
        return check_finite(out[0].cpu().numpy().astype(np.float32, copy=False), "the features")
