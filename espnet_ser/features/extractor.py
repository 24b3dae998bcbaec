"""The interface every feature extractor of a dump implements (:mod:`espnet_ser.features.dump`)."""

import abc
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import yaml


class FeatureError(ValueError):
    """Features cannot be computed, or a dump is incomplete or inconsistent."""


class Extractor(abc.ABC):
    """Turns a 1-D waveform at ``fs`` Hz into one array per utterance; ``conf`` is written to
    ``<name>.yaml`` (equal confs: compatible dumps); ``compression_method``: kaldiio's (None)."""

    name: str
    conf: Dict
    fs: int
    min_samples: int = 1
    compression_method: Optional[int] = None

    @property
    @abc.abstractmethod
    def output_dims(self) -> Tuple[int, ...]:
        """Dims of one frame: ``(n_mels,)``, ``(n_layers * hidden,)``; ``()`` for samples."""

    @abc.abstractmethod
    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Features of a 1-D waveform at ``self.fs`` Hz (FeatureError if unusable)."""

    def extract(self, wave: np.ndarray, fs: int) -> np.ndarray:
        """Features of ``wave`` sampled at ``fs`` Hz, which must be ``self.fs``."""
        if int(fs) != self.fs:
            raise FeatureError(f"{self.name}: audio at {fs} Hz, the extractor takes {self.fs} Hz")
        return self(wave)


def read_yaml_mapping(path, missing: str, expected: str) -> Dict:
    """The mapping a YAML file holds; FeatureError "<path>: <missing>" without the file,
    "<path>: expected <expected>" for another content."""
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: {missing}")
    with path.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise FeatureError(f"{path}: expected {expected}")
    return conf


def waveform_input(wave, min_samples: int = 0, needed: str = "") -> np.ndarray:
    """A 1-D waveform as contiguous float32; FeatureError if not 1-D or under ``min_samples``."""
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise FeatureError(f"expected a 1-D waveform, got shape {wave.shape}")
    if len(wave) < min_samples:
        raise FeatureError(f"waveform has {len(wave)} samples; {needed}")
    return np.ascontiguousarray(wave, dtype=np.float32)


def check_finite(out: np.ndarray, what: str) -> np.ndarray:
    """``out``; FeatureError "<what> hold NaN or infinite values" if it holds any."""
    if not np.all(np.isfinite(out)):
        raise FeatureError(f"{what} hold NaN or infinite values")
    return out
