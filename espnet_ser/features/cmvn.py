"""Global mean/variance statistics as ESPnet's GlobalMVN loads them: an npz of ``count``,
``sum`` and ``sum_square`` (float64), as ``collect_stats``'s ``feats_stats.npz``."""

import logging
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from espnet_ser.features.dump import iter_feats
from espnet_ser.features.extractor import FeatureError
from espnet_ser.utils.io import atomic_path

PathLike = Union[str, Path]


class CMVNStats:
    """Running float64 sums of features, their squares and the frame count."""

    def __init__(self):
        self.count, self.sum, self.sum_square = 0, None, None

    def add(self, feats: np.ndarray, name: str = "matrix") -> None:
        """Accumulate a (frames, dim) matrix; ``name`` is used in error messages."""
        feats = np.asarray(feats)
        if feats.ndim != 2:
            raise FeatureError(f"{name}: expected a (frames, dim) matrix, got shape {feats.shape}")
        x = feats.astype(np.float64, copy=False)
        if not np.all(np.isfinite(x)):
            raise FeatureError(f"{name}: features contain NaN or infinite values")
        if self.sum is None:
            self.sum = np.zeros(x.shape[1], dtype=np.float64)
            self.sum_square = np.zeros(x.shape[1], dtype=np.float64)
        elif x.shape[1] != self.sum.shape[0]:
            raise FeatureError(f"{name}: feature dim {x.shape[1]} differs from the earlier "
                               f"{self.sum.shape[0]}")
        self.count += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_square += np.square(x).sum(axis=0)

    def mean_std(self, eps: float = 1.0e-20) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation the way GlobalMVN derives them."""
        if not self.count:
            raise FeatureError("no frames accumulated")
        mean = self.sum / self.count
        var = self.sum_square / self.count - mean * mean
        return mean, np.sqrt(np.maximum(var, eps))

    def as_dict(self) -> Dict[str, np.ndarray]:
        self.mean_std()  # FeatureError without frames
        return {"count": np.asarray(self.count, dtype=np.int64), "sum": self.sum,
                "sum_square": self.sum_square}

    def save(self, path: PathLike) -> None:  # atomic
        stats = self.as_dict()
        with atomic_path(path) as tmp, tmp.open("wb") as f:  # a file object: no .npz suffix
            np.savez(f, **stats)


def compute_cmvn_stats(feats_scp: PathLike, log_every: int = 1000) -> CMVNStats:
    """Accumulate the global statistics of every matrix listed in a feats.scp, logging every
    ``log_every`` utterances."""
    stats = CMVNStats()
    for n, (utt, mat) in enumerate(iter_feats(feats_scp), 1):
        stats.add(mat, f"{feats_scp}: utterance {utt}")
        if log_every and n % log_every == 0:
            logging.info(f"{n} utterances, {stats.count} frames")
    if stats.sum is None:
        raise FeatureError(f"{feats_scp}: no utterances")
    return stats


def load_cmvn_stats(path: PathLike) -> CMVNStats:
    """Read an npz written by :meth:`CMVNStats.save` (or by ESPnet's collect_stats)."""
    with np.load(path) as data:
        missing = [k for k in ("count", "sum", "sum_square") if k not in data]
        if missing:
            raise FeatureError(f"{path}: not a CMVN stats file (no {', '.join(missing)})")
        stats = CMVNStats()
        stats.count = int(data["count"])
        stats.sum, stats.sum_square = (np.asarray(data[k], np.float64) for k in ("sum", "sum_square"))
    return stats
