"""Global mean and variance statistics in the format ESPnet's GlobalMVN loads.

``espnet2.layers.global_mvn.GlobalMVN(stats_file=...)`` reads an ``.npz`` with

    count       number of frames (integer scalar)
    sum         per-dimension sum of the features           (dim,)
    sum_square  per-dimension sum of the squared features   (dim,)

and normalises with ``mean = sum / count`` and ``std = sqrt(max(sum_square / count -
mean**2, eps))``. This is the file ESPnet's ``collect_stats`` writes as
``feats_stats.npz``; we accumulate in float64 (ESPnet accumulates in the feature dtype).
"""

import logging
import os
from pathlib import Path
from typing import Dict, Iterable, Tuple, Union

import numpy as np

from espnet_ser.features.fbank import FeatureError, iter_feats

PathLike = Union[str, Path]


class CMVNStats:
    """Running float64 sums of features, their squares and the frame count."""

    def __init__(self):
        self.count = 0
        self.sum = None
        self.sum_square = None

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
            raise FeatureError(
                f"{name}: feature dim {x.shape[1]} differs from the earlier {self.sum.shape[0]}"
            )
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
        if not self.count:
            raise FeatureError("no frames accumulated")
        return {
            "count": np.asarray(self.count, dtype=np.int64),
            "sum": self.sum,
            "sum_square": self.sum_square,
        }

    def save(self, path: PathLike) -> None:
        """Write the npz through a temporary file and rename (never a half file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as f:  # a file object: np.savez adds no .npz suffix
                np.savez(f, **self.as_dict())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def accumulate(matrices: Iterable[Tuple[str, np.ndarray]]) -> CMVNStats:
    """Accumulate ``(name, matrix)`` pairs into :class:`CMVNStats`."""
    stats = CMVNStats()
    for name, mat in matrices:
        stats.add(mat, name)
    return stats


def compute_cmvn_stats(feats_scp: PathLike, log_every: int = 1000) -> CMVNStats:
    """Accumulate the global statistics of every matrix listed in a feats.scp."""
    stats = CMVNStats()
    n = 0
    for n, (utt, mat) in enumerate(iter_feats(feats_scp), 1):
        stats.add(mat, f"{feats_scp}: utterance {utt}")
        if n % log_every == 0:
            logging.info(f"{n} utterances, {stats.count} frames")
    if n == 0:
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
        stats.sum = np.asarray(data["sum"], dtype=np.float64)
        stats.sum_square = np.asarray(data["sum_square"], dtype=np.float64)
    return stats
