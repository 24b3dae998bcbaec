"""Average the N best ``{epoch}epoch.pth`` of an experiment, ranked by the Reporter state in
``exp_dir/checkpoint.pth``; outputs are written atomically."""

import json
import logging
import math
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from espnet_ser.utils.io import PathLike, atomic_symlink, atomic_torch_save, atomic_write_text
from espnet_ser.utils.safe_load import key_differences, list_keys, load_model_state

CHECKPOINT_NAME = "checkpoint.pth"
EPOCH_FILE_RE = re.compile(r"^(\d+)epoch\.pth$")

_NON_METRIC_KEYS = ("time", "total_count")
_MIN_METRIC_TOKENS = frozenset(
    ["loss", "cer", "wer", "mer", "ter", "eer", "mse", "mae", "rmse", "err", "error"])


class MetricNotFoundError(KeyError):
    """The requested metric was never reported; the message lists the available ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def load_training_checkpoint(exp_dir: PathLike) -> Tuple[Mapping[str, Any], Any]:
    """``(state, Reporter)`` of ``exp_dir/checkpoint.pth``, the trainer's per-epoch checkpoint."""
    from espnet2.train.reporter import Reporter

    path = Path(exp_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no training checkpoint (written by ESPnet's trainer after each epoch)")
    # the reporter holds timedeltas and numpy scalars (the experiment's own file)
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError:  # not the zip format
            state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot be loaded ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping) or "reporter" not in state:
        found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(
            f"{path}: not an ESPnet training checkpoint (no 'reporter' entry; found {found})")
    reporter_state = state["reporter"]
    if not isinstance(reporter_state, Mapping) or not {"stats", "epoch"} <= set(reporter_state):
        raise ValueError(f"{path}: the 'reporter' entry is not a Reporter state dict")
    reporter = Reporter()
    reporter.load_state_dict(dict(reporter_state))
    return state, reporter


def available_metrics(reporter) -> List[str]:
    """All ``<phase>.<key>`` names reported in any epoch, sorted."""
    return sorted({f"{phase}.{key}" for epoch in reporter.stats
                   for phase, key in reporter.get_all_keys(epoch) if key not in _NON_METRIC_KEYS})


def read_epoch_metrics(exp_dir: PathLike, metric: str = "valid.acc") -> Dict[int, float]:
    """``{epoch: value}`` of ``metric`` (``<phase>.<key>``); MetricNotFoundError lists the rest."""
    phase, sep, key = str(metric).partition(".")
    if not sep or not phase or not key:
        raise ValueError(
            f"metric must be <phase>.<key> (e.g. valid.acc, valid.loss), got {metric!r}")
    reporter = load_training_checkpoint(exp_dir)[1]
    values = {int(epoch): float(reporter.stats[epoch][phase][key])
              for epoch in sorted(reporter.stats) if reporter.has(phase, key, epoch)}
    if not values or key in _NON_METRIC_KEYS:
        raise MetricNotFoundError(
            f"{Path(exp_dir) / CHECKPOINT_NAME}: metric {metric!r} was not reported; "
            "available metrics: " + ", ".join(available_metrics(reporter)))
    return values


def infer_mode(metric: str) -> str:
    """``"min"`` for losses and error rates (name parts split on ``.``/``_``), else ``"max"``."""
    tokens = re.split(r"[._]", str(metric).lower())
    return "min" if any(t in _MIN_METRIC_TOKENS for t in tokens) else "max"


def _check_positive(name: str, n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def select_nbest(metrics: Mapping[int, float], n: int, mode: str) -> List[Tuple[int, float]]:
    """The ``n`` best finite ``(epoch, value)`` pairs, best first; ties go to the later epoch."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    _check_positive("n", n)
    finite = []
    for epoch, value in metrics.items():
        value = float(value)
        if math.isfinite(value):
            finite.append((int(epoch), value))
        else:
            logging.warning(f"epoch {epoch}: value {value} is not finite; not selected")
    sign = -1.0 if mode == "max" else 1.0
    finite.sort(key=lambda ev: (sign * ev[1], -ev[0]))
    return finite[:n]


def find_epoch_checkpoints(exp_dir: PathLike) -> Dict[int, Path]:
    """``{epoch: path}`` of the ``{epoch}epoch.pth`` files present in ``exp_dir``."""
    matches = [(EPOCH_FILE_RE.match(p.name), p) for p in Path(exp_dir).iterdir()]
    found = {int(m.group(1)): p for m, p in matches if m and p.is_file()}
    return dict(sorted(found.items()))


def load_state_dict(path: PathLike) -> "OrderedDict[str, torch.Tensor]":
    """A model state dict, read with ``weights_only=True`` (:func:`load_model_state`)."""
    try:
        return load_model_state(path)
    except ValueError as e:
        raise type(e)(
            f"{e}. Average the per-epoch files ({{epoch}}epoch.pth), not checkpoint.pth.") from e


def _tie_groups(state: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """``{key: first key}`` for keys sharing one tensor view (empty tensors never tied)."""
    first: Dict[Tuple, str] = {}
    groups: Dict[str, str] = {}
    for key, t in state.items():
        if t.numel() == 0:
            groups[key] = key
            continue
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
                 tuple(t.stride()), t.dtype)
        groups[key] = first.setdefault(ident, key)
    return groups


def _accumulator(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.bool:
        return t.detach().clone()
    wide = torch.float64 if t.is_floating_point() else (
        torch.complex128 if t.is_complex() else torch.int64)
    return t.detach().to(wide, copy=True)


def _check_same_layout(path, first_path, state, meta, ties, groups) -> None:
    missing = [k for k in meta if k not in state]
    extra = [k for k in state if k not in meta]
    if missing or extra:
        raise ValueError(f"{path}: parameter names differ from {first_path}: "
                         + "; ".join(key_differences(missing, extra, limit=10)))
    for key, t in state.items():
        dtype, shape = meta[key]
        for what, this, first in (("shape", tuple(t.shape), tuple(shape)), ("dtype", t.dtype, dtype)):
            if this != first:
                raise ValueError(
                    f"{path}: key {key!r} has {what} {this}, but {first} in {first_path}")
    untied = sorted({name for k in meta if groups[k] != ties[k]
                     for name in (k, ties[k], groups[k])})
    if untied:
        raise ValueError(
            f"{path}: tied weights differ from {first_path}: keys {list_keys(untied, 10)} "
            f"share storage in one file but not in the other")


@torch.no_grad()
def average_state_dicts(paths: Sequence[PathLike]) -> "OrderedDict[str, torch.Tensor]":
    """Average the state dicts of ``paths``, one loaded at a time: floats in float64, integers
    floor-divided in int64, booleans from the first file, ties kept; ValueError on a layout change."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoint files to average")
    state = load_state_dict(paths[0])
    ties = _tie_groups(state)
    meta = {key: (t.dtype, t.shape) for key, t in state.items()}
    # a tie group is accumulated once, under its first key
    acc = OrderedDict((key, _accumulator(t)) for key, t in state.items() if ties[key] == key)
    del state
    for path in paths[1:]:
        state = load_state_dict(path)
        _check_same_layout(path, paths[0], state, meta, ties, _tie_groups(state))
        for key, t in state.items():
            if ties[key] == key and meta[key][0] != torch.bool:
                acc[key].add_(t.to(acc[key].dtype))
        del state
    n = len(paths)
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, (dtype, _) in meta.items():
        total = acc.get(key)
        if ties[key] != key:
            out[key] = out[ties[key]]
        elif dtype == torch.bool:
            out[key] = total
        elif total.is_floating_point() or total.is_complex():
            out[key] = (total / n).to(dtype)
        else:
            out[key] = torch.div(total, n, rounding_mode="floor").to(dtype)
    return out


def _write_average(paths: Sequence[Path], out: Path, info: Dict[str, Any],
                   link: Optional[Path]) -> Dict[str, Any]:
    if link is not None and os.path.abspath(link) == os.path.abspath(out):
        link = None
    avg = average_state_dicts(paths)
    info = dict(info, checkpoints=[str(p) for p in paths], num_averaged=len(paths),
                output=str(out), link=str(link) if link is not None else None)
    sidecar = out.with_name(out.name + ".json")
    atomic_torch_save(avg, out)
    atomic_write_text(sidecar, json.dumps(info, indent=2) + "\n")
    logging.info(f"Wrote {out} (averaged {len(paths)} files) and {sidecar}")
    if link is not None:
        how = atomic_symlink(out, link)
        logging.info(f"{link} -> {out.name} ({how})")
    return info


def average_nbest_checkpoints(exp_dir: PathLike, metric: str = "valid.acc", nbest: int = 10,
                              mode: Optional[str] = None, out: Optional[PathLike] = None,
                              link: bool = True) -> Dict[str, Any]:
    """Average the ``nbest`` best epochs (with a model file) by ``metric`` into ``out`` (default
    ``<metric>.ave_<N>best.pth``), ``<out>.json``, ``link``: ``<metric>.ave.pth`` -> it; the sidecar."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: experiment directory does not exist")
    _check_positive("nbest", nbest)
    if mode is None:
        mode = infer_mode(metric)
    metrics = read_epoch_metrics(exp_dir, metric)
    files = find_epoch_checkpoints(exp_dir)
    gone = [e for e in metrics if e not in files]
    if gone:
        logging.info(f"{metric}: no model file for epochs {gone} (removed by keep_nbest_models?)")
    selected = select_nbest({e: v for e, v in metrics.items() if e in files}, nbest, mode)
    if not selected:
        raise FileNotFoundError(
            f"{exp_dir}: none of the epochs with a finite {metric} "
            f"({sorted(metrics)}) has an {{epoch}}epoch.pth file "
            f"(present: {sorted(files) or 'none'})")
    if len(selected) < nbest:
        logging.warning(
            f"{exp_dir}: only {len(selected)} of the requested {nbest} epochs have a "
            f"model file and a finite {metric}; averaging {len(selected)}")
    logging.info(f"{metric} ({mode}) {len(selected)}-best epochs: "
                 + ", ".join(f"{e}epoch={v:.6g}" for e, v in selected))
    out = Path(out) if out is not None else exp_dir / f"{metric}.ave_{nbest}best.pth"
    info = dict(exp_dir=str(exp_dir), metric=metric, mode=mode, nbest=nbest,
                epochs=[e for e, _ in selected], values=[v for _, v in selected])
    link_path = out.parent / f"{metric}.ave.pth" if link else None
    return _write_average([files[e] for e, _ in selected], out, info, link_path)


def average_checkpoint_files(paths: Sequence[PathLike], out: PathLike) -> Dict[str, Any]:
    """Average an explicit list of model files into ``out`` (+ sidecar ``<out>.json``)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoint files given")
    epochs = [EPOCH_FILE_RE.match(p.name) for p in paths]
    info = dict(exp_dir=None, metric=None, mode=None, nbest=len(paths),
                epochs=[int(m.group(1)) for m in epochs] if all(epochs) else None, values=None)
    logging.info("Averaging " + ", ".join(str(p) for p in paths))
    return _write_average(paths, Path(out), info, None)
