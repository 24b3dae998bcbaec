"""Checkpoint averaging and model packing for experiment directories.

An experiment directory ``exp/<name>/`` written by ESPnet2's trainer holds

- ``checkpoint.pth``: ``{"model", "reporter", "optimizers", "schedulers", "scaler"}``;
  the reporter state has the per-epoch statistics (``valid.acc``, ``valid.loss``, ...),
- ``{epoch}epoch.pth``: model state dicts; only the ones kept by ``--keep_nbest_models``
  (plus the latest epoch) survive,
- ``config.yaml``: the training arguments.

This module reads the per-epoch statistics with ESPnet's own
:class:`espnet2.train.reporter.Reporter`, selects the N best epochs, averages their state
dicts, and packs / unpacks a trained model with ESPnet's
:func:`espnet2.main_funcs.pack_funcs.pack` / :func:`~espnet2.main_funcs.pack_funcs.unpack`,
so that the archive has the ``meta.yaml`` layout ESPnet users know
(``yaml_files: {asr_train_config}``, ``files: {asr_model_file}``).

Every file is written to a temporary name in the destination directory and renamed into
place, so an interrupted run never leaves a half-written model behind.
"""

import contextlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

PathLike = Union[str, Path]

CHECKPOINT_NAME = "checkpoint.pth"
EPOCH_FILE_RE = re.compile(r"^(\d+)epoch\.pth$")

# Entries of a reporter's per-phase statistics that are bookkeeping, not metrics.
_NON_METRIC_KEYS = ("time", "total_count")

# Name parts that mean "smaller is better".
_MIN_METRIC_TOKENS = frozenset(
    ["loss", "cer", "wer", "mer", "ter", "eer", "mse", "mae", "rmse", "err", "error"]
)

# Keys of ESPnet's ``meta.yaml`` written by ``espnet2.bin.pack asr``.
META_CONFIG_KEY = "asr_train_config"
META_MODEL_KEY = "asr_model_file"
# The decode config is packed as a plain file beside config.yaml under this name; it is
# not put in meta.yaml because ESPnet passes every meta key to ``Speech2Text(**kwargs)``.
DECODE_CONFIG_NAME = "decode.yaml"

# Top-level training arguments whose paths are not needed to use a trained model
# (training data lists, shape files, output directory, initialisation, ...).
_SKIP_CONFIG_KEYS = frozenset(
    [
        "config",
        "output_dir",
        "train_data_path_and_name_and_type",
        "valid_data_path_and_name_and_type",
        "train_shape_file",
        "valid_shape_file",
        "init_param",
        "deepspeed_config",
        "dist_init_method",
        "wandb_project",
        "wandb_id",
        "wandb_entity",
        "wandb_name",
    ]
)
# Keys (last component of the key path) that must point to an existing file when set.
_REQUIRED_FILE_KEYS = frozenset(["token_list", "bpemodel", "stats_file"])

# Archive names understood by ESPnet's Archiver (pack_funcs.Archiver).
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tbz2", ".txz")
_ARCHIVE_DOUBLE_SUFFIXES = ([".tar", ".gz"], [".tar", ".bz2"], [".tar", ".xz"])


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _temporary_path(path: Path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename."""
    with _temporary_path(Path(path)) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write text to a temporary file in the same directory, then rename."""
    with _temporary_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_symlink(target: PathLike, link: PathLike) -> str:
    """Point ``link`` at ``target`` (relative link), replacing an existing link atomically.

    Falls back to an (atomic) copy where the file system has no symbolic links.
    Returns ``"symlink"`` or ``"copy"``.
    """
    target, link = Path(target), Path(link)
    if link.is_dir() and not link.is_symlink():
        raise IsADirectoryError(f"cannot replace directory {link} with a link to {target}")
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(link.parent))
    tmp = link.parent / f".{link.name}.{os.getpid()}.lnk"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    try:
        os.symlink(rel, tmp)
    except OSError:
        with _temporary_path(link) as tmp_copy:
            shutil.copyfile(target, tmp_copy)
        return "copy"
    try:
        os.replace(tmp, link)
    finally:
        if tmp.is_symlink():
            tmp.unlink()
    return "symlink"


# --------------------------------------------------------------------------------------
# Reporter statistics
# --------------------------------------------------------------------------------------
def _split_metric(metric: str) -> Tuple[str, str]:
    phase, sep, key = str(metric).partition(".")
    if not sep or not phase or not key:
        raise ValueError(
            f"metric must be <phase>.<key> (e.g. valid.acc, valid.loss), got {metric!r}"
        )
    return phase, key


def load_reporter(exp_dir: PathLike):
    """Load the :class:`espnet2.train.reporter.Reporter` saved in ``exp_dir/checkpoint.pth``."""
    from espnet2.train.reporter import Reporter

    path = Path(exp_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no training checkpoint (written by ESPnet's trainer after each epoch)"
        )
    # The reporter state holds datetime.timedelta and numpy scalars, so this needs the
    # full unpickler; the file is the experiment's own output. mmap avoids reading the
    # model and optimizer tensors into memory (it needs the zip format; else fall back).
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError:
            state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot be loaded ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping) or "reporter" not in state:
        found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(
            f"{path}: not an ESPnet training checkpoint (no 'reporter' entry; found {found})"
        )
    reporter_state = state["reporter"]
    if not isinstance(reporter_state, Mapping) or not {"stats", "epoch"} <= set(
        reporter_state
    ):
        raise ValueError(f"{path}: the 'reporter' entry is not a Reporter state dict")
    reporter = Reporter()
    reporter.load_state_dict(dict(reporter_state))
    return reporter


def available_metrics(reporter) -> List[str]:
    """All ``<phase>.<key>`` names reported in any epoch, sorted."""
    names = set()
    for epoch in reporter.stats:
        for phase, key in reporter.get_all_keys(epoch):
            if key not in _NON_METRIC_KEYS:
                names.add(f"{phase}.{key}")
    return sorted(names)


class MetricNotFoundError(KeyError):
    """The requested metric was never reported; the message lists the available ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def read_epoch_metrics(exp_dir: PathLike, metric: str = "valid.acc") -> Dict[int, float]:
    """Per-epoch values of ``metric`` (``<phase>.<key>``) from ``exp_dir/checkpoint.pth``.

    Returns ``{epoch: value}`` for every epoch in which the metric was reported, in epoch
    order. Raises :class:`MetricNotFoundError` (a ``KeyError``) listing the available
    metrics if the name is unknown.
    """
    phase, key = _split_metric(metric)
    reporter = load_reporter(exp_dir)
    values = {}
    for epoch in sorted(reporter.stats):
        if reporter.has(phase, key, epoch):
            values[int(epoch)] = float(reporter.stats[epoch][phase][key])
    if not values or key in _NON_METRIC_KEYS:
        path = Path(exp_dir) / CHECKPOINT_NAME
        raise MetricNotFoundError(
            f"{path}: metric {metric!r} was not reported; available metrics: "
            + ", ".join(available_metrics(reporter))
        )
    return values


def infer_mode(metric: str) -> str:
    """``"min"`` for losses and error rates (loss, cer, wer, eer, mse, ...), else ``"max"``.

    The key is split on ``.`` and ``_``; e.g. ``valid.loss_att`` and ``valid.cer_ctc`` are
    minimised, ``valid.acc`` and ``valid.ccc`` maximised.
    """
    tokens = re.split(r"[._]", str(metric).lower())
    return "min" if any(t in _MIN_METRIC_TOKENS for t in tokens) else "max"


def select_nbest(
    metrics: Mapping[int, float], n: int, mode: str
) -> List[Tuple[int, float]]:
    """The ``n`` best ``(epoch, value)`` pairs, best first.

    ``mode`` is ``"max"`` (e.g. accuracy) or ``"min"`` (e.g. loss). Ties are broken in
    favour of the later epoch. Non-finite values (NaN / inf, e.g. a diverged epoch) are
    never selected. Returns fewer than ``n`` pairs when fewer epochs are available.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
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


# --------------------------------------------------------------------------------------
# Averaging
# --------------------------------------------------------------------------------------
def epoch_checkpoint_path(exp_dir: PathLike, epoch: int) -> Path:
    """``exp_dir/{epoch}epoch.pth``, the trainer's per-epoch model file."""
    return Path(exp_dir) / f"{int(epoch)}epoch.pth"


def find_epoch_checkpoints(exp_dir: PathLike) -> Dict[int, Path]:
    """``{epoch: path}`` of the ``{epoch}epoch.pth`` files present in ``exp_dir``."""
    found = {}
    for p in Path(exp_dir).iterdir():
        m = EPOCH_FILE_RE.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def load_state_dict(path: PathLike) -> "OrderedDict[str, torch.Tensor]":
    """Load a model state dict (a mapping of names to tensors) saved with ``torch.save``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(
            f"{path}: cannot be loaded as a model state dict ({type(e).__name__}: {e}). "
            f"Average the per-epoch files ({{epoch}}epoch.pth), not checkpoint.pth."
        ) from e
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                f"expected a model state dict"
            )
    return OrderedDict(state)


def _tie_groups(state: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """``{key: first key}`` for keys that are the same tensor view (tied weights):
    same storage, offset, shape, stride and dtype. Empty tensors are never tied."""
    first: Dict[Tuple, str] = {}
    groups: Dict[str, str] = {}
    for key, t in state.items():
        if t.numel() == 0:
            groups[key] = key
            continue
        ident = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            tuple(t.stride()),
            t.dtype,
        )
        groups[key] = first.setdefault(ident, key)
    return groups


def _list_keys(keys: Sequence[str], limit: int = 10) -> str:
    return str(list(keys[:limit])) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


@torch.no_grad()
def average_state_dicts(paths: Sequence[PathLike]) -> "OrderedDict[str, torch.Tensor]":
    """Average the model state dicts saved in ``paths`` (loaded one at a time).

    - Floating-point (and complex) tensors are summed in float64 (complex128), divided by
      the number of files and cast back to their own dtype.
    - Integer tensors of any integer dtype (e.g. BatchNorm's ``num_batches_tracked``) get
      the integer mean, rounded down: summed in int64, floor-divided by the number of
      files, cast back to their own dtype. (ESPnet's own averaging keeps the sum; the
      mean keeps the counter on the scale of one model and within its dtype's range.)
    - Boolean tensors are taken from the first file.
    - Tied weights (several keys sharing one tensor, e.g. a decoder embedding tied with
      the output layer) are averaged once, and the keys share one tensor in the result,
      so the tie survives ``torch.save``. Every file must tie the same keys.

    All files must have the same keys, shapes, dtypes and ties; otherwise ``ValueError``
    names both files and the keys.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoint files to average")
    n = len(paths)
    first_path = paths[0]
    acc: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    meta: Dict[str, Tuple[torch.dtype, torch.Size]] = {}
    ties: Dict[str, str] = {}
    for i, path in enumerate(paths):
        state = load_state_dict(path)
        groups = _tie_groups(state)
        if i == 0:
            ties = groups
            for key, t in state.items():
                meta[key] = (t.dtype, t.shape)
                if ties[key] != key:
                    continue  # accumulated once, under the first key of its tie group
                if t.is_floating_point():
                    acc[key] = t.detach().to(torch.float64, copy=True)
                elif t.is_complex():
                    acc[key] = t.detach().to(torch.complex128, copy=True)
                elif t.dtype == torch.bool:
                    acc[key] = t.detach().clone()
                else:
                    acc[key] = t.detach().to(torch.int64, copy=True)
            continue
        missing = [k for k in meta if k not in state]
        extra = [k for k in state if k not in meta]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {_list_keys(missing)}")
            if extra:
                parts.append(f"unexpected keys {_list_keys(extra)}")
            raise ValueError(
                f"{path}: parameter names differ from {first_path}: " + "; ".join(parts)
            )
        for key, t in state.items():
            dtype, shape = meta[key]
            if t.shape != shape:
                raise ValueError(
                    f"{path}: key {key!r} has shape {tuple(t.shape)}, "
                    f"but {tuple(shape)} in {first_path}"
                )
            if t.dtype != dtype:
                raise ValueError(
                    f"{path}: key {key!r} has dtype {t.dtype}, but {dtype} in {first_path}"
                )
        untied = sorted(
            {name for k in meta if groups[k] != ties[k] for name in (k, ties[k], groups[k])}
        )
        if untied:
            raise ValueError(
                f"{path}: tied weights differ from {first_path}: keys {_list_keys(untied)} "
                f"share storage in one file but not in the other"
            )
        for key, t in state.items():
            if ties[key] != key or meta[key][0] == torch.bool:
                continue
            acc[key].add_(t.to(acc[key].dtype))
        del state
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, (dtype, _) in meta.items():
        if ties[key] != key:
            out[key] = out[ties[key]]
            continue
        total = acc[key]
        if dtype == torch.bool:
            out[key] = total
        elif total.is_floating_point() or total.is_complex():
            out[key] = (total / n).to(dtype)
        else:
            out[key] = torch.div(total, n, rounding_mode="floor").to(dtype)
    return out


def _sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _write_average(
    paths: Sequence[Path], out: Path, info: Dict[str, Any], link: Optional[Path]
) -> Dict[str, Any]:
    if link is not None and os.path.abspath(link) == os.path.abspath(out):
        link = None
    avg = average_state_dicts(paths)
    info = dict(info)
    info["checkpoints"] = [str(p) for p in paths]
    info["num_averaged"] = len(paths)
    info["output"] = str(out)
    info["link"] = str(link) if link is not None else None
    atomic_torch_save(avg, out)
    atomic_write_text(_sidecar_path(out), json.dumps(info, indent=2) + "\n")
    logging.info(f"Wrote {out} (averaged {len(paths)} files) and {_sidecar_path(out)}")
    if link is not None:
        how = atomic_symlink(out, link)
        logging.info(f"{link} -> {out.name} ({how})")
    return info


def default_average_name(metric: str, nbest: int) -> str:
    """ESPnet's name for an n-best average: ``<metric>.ave_<N>best.pth``."""
    return f"{metric}.ave_{int(nbest)}best.pth"


def average_nbest_checkpoints(
    exp_dir: PathLike,
    metric: str = "valid.acc",
    nbest: int = 10,
    mode: Optional[str] = None,
    out: Optional[PathLike] = None,
    link: bool = True,
) -> Dict[str, Any]:
    """Average the ``nbest`` best epochs of ``exp_dir`` by ``metric``.

    Only epochs whose ``{epoch}epoch.pth`` still exists are candidates; if fewer than
    ``nbest`` exist, the available ones are averaged with a warning. Writes ``out``
    (default ``exp_dir/<metric>.ave_<nbest>best.pth``), the sidecar ``<out>.json`` and, if
    ``link``, ``<metric>.ave.pth`` beside ``out`` pointing at it. Returns the sidecar dict.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: experiment directory does not exist")
    if isinstance(nbest, bool) or not isinstance(nbest, int) or nbest < 1:
        raise ValueError(f"nbest must be a positive integer, got {nbest!r}")
    if mode is None:
        mode = infer_mode(metric)
    metrics = read_epoch_metrics(exp_dir, metric)
    files = find_epoch_checkpoints(exp_dir)
    candidates = {e: v for e, v in metrics.items() if e in files}
    gone = [e for e in metrics if e not in files]
    if gone:
        logging.info(
            f"{metric}: no model file for epochs {gone} (removed by keep_nbest_models?)"
        )
    selected = select_nbest(candidates, nbest, mode)
    if not selected:
        raise FileNotFoundError(
            f"{exp_dir}: none of the epochs with a finite {metric} "
            f"({sorted(metrics)}) has an {{epoch}}epoch.pth file "
            f"(present: {sorted(files) or 'none'})"
        )
    if len(selected) < nbest:
        logging.warning(
            f"{exp_dir}: only {len(selected)} of the requested {nbest} epochs have a "
            f"model file and a finite {metric}; averaging {len(selected)}"
        )
    logging.info(
        f"{metric} ({mode}) {len(selected)}-best epochs: "
        + ", ".join(f"{e}epoch={v:.6g}" for e, v in selected)
    )
    out = Path(out) if out is not None else exp_dir / default_average_name(metric, nbest)
    info = dict(
        exp_dir=str(exp_dir),
        metric=metric,
        mode=mode,
        nbest=nbest,
        epochs=[e for e, _ in selected],
        values=[v for _, v in selected],
    )
    link_path = out.parent / f"{metric}.ave.pth" if link else None
    return _write_average([files[e] for e, _ in selected], out, info, link_path)


def average_checkpoint_files(paths: Sequence[PathLike], out: PathLike) -> Dict[str, Any]:
    """Average an explicit list of model files into ``out`` (+ sidecar ``<out>.json``)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoint files given")
    epochs = [EPOCH_FILE_RE.match(p.name) for p in paths]
    info = dict(
        exp_dir=None,
        metric=None,
        mode=None,
        nbest=len(paths),
        epochs=[int(m.group(1)) for m in epochs] if all(epochs) else None,
        values=None,
    )
    logging.info("Averaging " + ", ".join(str(p) for p in paths))
    return _write_average(paths, Path(out), info, None)


# --------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------
def _check_archive_name(out: Path) -> None:
    # Same rules as espnet2.main_funcs.pack_funcs.Archiver, checked before any work.
    if out.suffix in _ARCHIVE_SUFFIXES or out.suffixes in _ARCHIVE_DOUBLE_SUFFIXES:
        return
    raise ValueError(
        f"{out}: unsupported archive name; use .zip, .tar, .tgz, .tar.gz, .tbz2, .tar.bz2, "
        f".txz or .tar.xz (with no other dot-suffix, e.g. packed_model.zip)"
    )


def find_referenced_files(
    config: Mapping[str, Any], source: PathLike = "config"
) -> Tuple[Dict[str, str], List[str]]:
    """Files and directories a training config refers to.

    Walks the config and returns ``({key_path: file}, [directories])`` for every string
    value naming an existing file or directory (relative paths are taken relative to the
    current directory, as the trainer did). Training-only arguments (data lists, shape
    files, output_dir, init_param, ...) and an inline ``token_list`` are skipped. Raises
    ``FileNotFoundError`` naming ``source`` and the key if a ``token_list``, ``bpemodel``
    or ``stats_file`` path does not exist.
    """
    files: Dict[str, str] = {}
    dirs: List[str] = []

    def walk(value, keys):
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, keys + [str(k)])
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, keys + [str(i)])
        elif isinstance(value, str) and value not in ("", ".", ".."):
            key_path = ".".join(keys)
            if os.path.isfile(value):
                files[key_path] = value
            elif os.path.isdir(value):
                dirs.append(value)
            elif keys and keys[-1] in _REQUIRED_FILE_KEYS:
                raise FileNotFoundError(
                    f"{source}: {key_path}={value!r} does not exist (relative paths are "
                    f"relative to the directory training ran in; run from the recipe "
                    f"directory)"
                )

    for key, value in config.items():
        if key in _SKIP_CONFIG_KEYS:
            continue
        if key == "token_list" and isinstance(value, (list, tuple)):
            continue
        walk(value, [str(key)])
    return files, dirs


def _archive_name(path: PathLike, base: Path) -> Optional[str]:
    """Name of ``path`` in the archive: relative to ``base`` (symlinks resolved when the
    target is inside ``base``, as ESPnet's pack does), or None if outside ``base``."""
    for candidate, root in (
        (Path(os.path.realpath(path)), Path(os.path.realpath(base))),
        (Path(os.path.abspath(path)), Path(os.path.abspath(base))),
    ):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return None


def _replace_values(value, keys, mapping: Mapping[str, str]):
    if isinstance(value, Mapping):
        return {k: _replace_values(v, keys + [str(k)], mapping) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_values(v, keys + [str(i)], mapping) for i, v in enumerate(value)]
    return mapping.get(".".join(keys), value)


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _load_yaml(path: Path) -> Dict[str, Any]:
    """A YAML mapping read with ``yaml.safe_load`` (``!!python/...`` tags refused)."""
    from espnet_ser.utils.safe_load import load_yaml_config

    return load_yaml_config(path)


class _Stage:
    """Files laid out under their archive names, hard-linked (or copied) into a temp dir."""

    def __init__(self, root: Path, base: Path):
        self.root = root
        self.base = base
        self.names: Dict[str, str] = {}  # real source path -> archive name
        self.used: Dict[str, str] = {}  # archive name -> real source path

    def name_for(self, src: PathLike) -> str:
        real = os.path.realpath(src)
        if real in self.names:
            return self.names[real]
        name = _archive_name(src, self.base)
        if name is None:
            # Outside the working directory: keep only the file name.
            name = f"external/{Path(src).name}"
            i = 1
            while name in self.used:
                i += 1
                name = f"external/{i}/{Path(src).name}"
        if name in self.used:
            raise ValueError(
                f"two different files would be packed as {name!r}: "
                f"{self.used[name]} and {real}"
            )
        self.names[real] = name
        self.used[name] = real
        return name

    def add_file(self, src: PathLike, name: Optional[str] = None) -> str:
        name = name or self.name_for(src)
        dst = self.root / name
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            real = os.path.realpath(src)  # os.link would hard-link a symlink itself
            try:
                os.link(real, dst)
            except OSError:
                shutil.copy2(real, dst)
        return name

    def add_yaml(self, src: Path, data: Dict[str, Any], replace: Mapping[str, str]) -> str:
        """Stage a YAML file whose path values ``replace`` maps to archive names."""
        from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

        name = self.name_for(src)
        changed = {k: v for k, v in replace.items() if k}
        rewritten = _replace_values(data, [], changed)
        if rewritten == data:
            return self.add_file(src, name)
        dst = self.root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        with dst.open("w", encoding="utf-8") as f:
            yaml_no_alias_safe_dump(rewritten, f, indent=4, sort_keys=False)
        return name

    def add_tree(self, src: PathLike) -> str:
        src = Path(src)
        if src.is_file():
            return self.add_file(src)
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: no such file or directory")
        top = self.name_for(src)
        for f in sorted(src.rglob("*")):
            if f.is_file():
                self.add_file(f, f"{top}/{f.relative_to(src).as_posix()}")
        return top


def pack_model(
    config: PathLike,
    model_file: PathLike,
    out: PathLike,
    decode_config: Optional[PathLike] = None,
    option: Iterable[PathLike] = (),
) -> Dict[str, Any]:
    """Pack a trained model into an ESPnet model archive (``.zip`` / ``.tar.gz`` / ...).

    The archive is made by :func:`espnet2.main_funcs.pack_funcs.pack` with
    ``yaml_files={"asr_train_config": config}`` and ``files={"asr_model_file": model}``,
    plus every file the config refers to (token list, BPE model, normalisation stats, ...)
    as options, so ESPnet's ``unpack`` rewrites those paths in the unpacked config. The
    decode config, if given, is stored as ``decode.yaml`` beside ``config.yaml``.

    Files are named in the archive by their path relative to the current directory (the
    recipe directory, where training ran), as in ESPnet; files outside it go under
    ``external/``. The yaml files are rewritten where needed so that their path values
    equal the archive names. Files are staged as hard links in a temporary directory next
    to ``out`` (this function changes the working directory while ESPnet's ``pack`` runs).

    Returns ``{"out", "config", "model_file", "decode_config", "files"}`` with archive names.
    """
    from espnet2.main_funcs.pack_funcs import pack

    config, model_file = Path(config), Path(model_file)
    out = Path(os.path.abspath(out))  # the staging below changes the working directory
    _check_archive_name(out)
    for p, what in ((config, "config"), (model_file, "model file")):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: {what} does not exist")
    if decode_config is not None and not Path(decode_config).is_file():
        raise FileNotFoundError(f"{decode_config}: decode config does not exist")

    base = Path.cwd()
    train_conf = _load_yaml(config)
    refs, ref_dirs = find_referenced_files(train_conf, source=str(config))
    for d in ref_dirs:
        logging.warning(
            f"{config}: refers to directory {d}; it is not packed "
            f"(add it with --option if the model needs it)"
        )
    decode_conf = None
    if decode_config is not None:
        decode_config = Path(decode_config)
        decode_conf = _load_yaml(decode_config)
        dec_refs, _ = find_referenced_files(decode_conf, source=str(decode_config))
        if dec_refs:
            logging.warning(
                f"{decode_config}: refers to files {sorted(dec_refs.values())}; they are "
                f"not packed and their paths are not rewritten"
            )

    out.parent.mkdir(parents=True, exist_ok=True)
    stage_root = Path(tempfile.mkdtemp(prefix=f".{out.name}.stage.", dir=out.parent))
    tmp_dir = None
    try:
        stage = _Stage(stage_root, base)
        model_name = stage.add_file(model_file)
        option_names: List[str] = []
        replace: Dict[str, str] = {}
        for key_path, value in refs.items():
            name = stage.add_file(value)
            if name not in option_names:
                option_names.append(name)
            if value != name:
                replace[key_path] = name
        config_name = stage.add_yaml(config, train_conf, replace)
        decode_name = None
        if decode_config is not None:
            decode_name = (Path(config_name).parent / DECODE_CONFIG_NAME).as_posix()
            real = os.path.realpath(decode_config)
            if stage.used.get(decode_name, real) != real:
                raise ValueError(
                    f"{stage.used[decode_name]} would be packed as {decode_name!r}, "
                    f"the name reserved for the decode config {decode_config}"
                )
            stage.used[decode_name] = real
            stage.add_file(decode_config, decode_name)
            option_names.append(decode_name)
        extras = [
            # the averaging sidecar (<model>.json) and the experiment's results table
            Path(os.path.realpath(model_file) + ".json"),
            model_file.with_name(model_file.name + ".json"),
            config.parent / "RESULTS.md",
            # the filterbank configs of models trained on dumped features (AED, GST)
            config.parent / "feats_config.yaml",
            config.parent / "gst_feats_config.yaml",
        ]
        for extra in extras:
            if extra.is_file():
                name = stage.add_file(extra)
                if name not in option_names:
                    option_names.append(name)
        for opt in option:
            name = stage.add_tree(opt)
            if name not in option_names:
                option_names.append(name)

        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.out.", dir=out.parent))
        tmp_out = tmp_dir / out.name
        captured = io.StringIO()
        with _working_directory(stage_root), contextlib.redirect_stdout(captured):
            pack(
                files={META_MODEL_KEY: model_name},
                yaml_files={META_CONFIG_KEY: config_name},
                option=option_names,
                outpath=str(tmp_out),
            )
        for line in captured.getvalue().splitlines():
            if not line.startswith("Generate:"):  # names the temporary archive
                logging.info(line)
        os.replace(tmp_out, out)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    logging.info(f"Packed {config} and {model_file} into {out}")
    return dict(
        out=str(out),
        config=config_name,
        model_file=model_name,
        decode_config=decode_name,
        files=[model_name, config_name] + option_names,
    )


def _pick_key(d: Mapping[str, str], preferred: str, suffix: str, archive: Path) -> str:
    if preferred in d:
        return d[preferred]
    keys = [k for k in d if k.endswith(suffix) and not k.startswith("lm_")]
    if len(keys) != 1:
        raise ValueError(
            f"{archive}: meta.yaml has no {preferred!r} (keys: {sorted(d)})"
        )
    return d[keys[0]]


def unpack_model(archive: PathLike, outdir: PathLike) -> Dict[str, Optional[str]]:
    """Unpack an archive made by :func:`pack_model` (or by ESPnet's ``pack asr``).

    Uses :func:`espnet2.main_funcs.pack_funcs.unpack`, which rewrites the paths in the
    unpacked config to the unpacked files. ``outdir`` is made absolute so that the
    rewritten paths work from any directory. Returns
    ``{"config": ..., "model_file": ..., "decode_config": ... or None}``.

    Before anything is written the archive is checked with
    :func:`espnet_ser.utils.safe_load.check_archive`: an absolute entry name, a ``..``
    component or a link leading outside ``outdir`` is refused (``UnsafeFileError``,
    a ``ValueError``, naming the entry). The yaml files are read with ``yaml.safe_load``.
    """
    from espnet2.main_funcs.pack_funcs import unpack

    from espnet_ser.utils.safe_load import check_archive, check_unpacked_paths

    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    _check_archive_name(archive)
    outdir = Path(os.path.abspath(outdir))
    check_archive(archive)
    files = unpack(archive, outdir)
    check_unpacked_paths(archive, outdir, files)
    config = _pick_key(files, META_CONFIG_KEY, "train_config", archive)
    model_file = _pick_key(files, META_MODEL_KEY, "model_file", archive)
    decode = Path(config).parent / DECODE_CONFIG_NAME
    return dict(
        config=config,
        model_file=model_file,
        decode_config=str(decode) if decode.is_file() else None,
    )
