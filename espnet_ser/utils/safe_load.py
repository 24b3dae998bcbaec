"""Loading configs (``yaml.safe_load``), weights (``torch.load(weights_only=True)``, strict)
and archives (entries kept inside the output directory) without running code from them."""

import argparse
import logging
import os
import pickle
import posixpath
import stat
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import yaml

from espnet_ser.utils.io import PathLike


class UnsafeFileError(ValueError):
    """A config, model file or archive refused: loading it could run code or write outside."""


class StateDictMismatchError(RuntimeError):
    """A state dict does not match the model; the message names the keys."""


def load_yaml_config(path: PathLike) -> Dict[str, Any]:
    """A YAML mapping read with ``yaml.safe_load``: :class:`UnsafeFileError` for tags that
    build Python objects (``!!python/object``, ...), ``ValueError`` for other bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    with path.open("r", encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.constructor.ConstructorError as e:
            raise UnsafeFileError(
                f"{path}: refused: {(e.problem or '').strip()} {e.problem_mark or ''}".rstrip()
                + " (configs are read with yaml.safe_load; tags that build Python "
                "objects such as !!python/object are not allowed)") from e
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping, found {type(data).__name__}")
    return data


def load_model_state(path: PathLike, map_location: Any = "cpu") -> "OrderedDict[str, torch.Tensor]":
    """A state dict read with ``torch.load(weights_only=True)``: UnsafeFileError for other
    pickled objects, ValueError when it is not a mapping of names to tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        if isinstance(e, pickle.UnpicklingError):
            skip = ("Weights only load failed", "Please file an issue", "Check the doc")
            detail = [line.strip() for line in str(e).splitlines()
                      if line.strip() and not line.startswith(skip)]
            raise UnsafeFileError(
                f"{path}: refused: not a file of tensors and plain containers "
                f"({detail[0] if detail else e}); model files are read with "
                f"torch.load(weights_only=True) and other pickled objects are never "
                f"unpickled") from e
        raise ValueError(
            f"{path}: cannot be loaded as a model file ({type(e).__name__}: {e})") from e
    if isinstance(state, Mapping) and "module" in state and isinstance(state["module"], Mapping):
        state = state["module"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                f"expected a model state dict")
    return OrderedDict(state)


def list_keys(keys: List[str], limit: int = 20) -> str:
    """``keys`` for a message: the first ``limit`` and how many there are in all."""
    return str(list(keys[:limit])) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def key_differences(missing: List[str], unexpected: List[str], limit: int = 20) -> List[str]:
    """``["missing keys [...]", "unexpected keys [...]"]``, for the non-empty lists."""
    return [f"{what} keys {list_keys(keys, limit)}"
            for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]


def load_into_model(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                    strict: bool = True, source: Any = "state dict"
                    ) -> Tuple[List[str], List[str]]:
    """``model.load_state_dict(state)``, returns ``(missing, unexpected)``; a mismatch is a
    StateDictMismatchError naming ``source`` (``strict=False``: a warning, the rest loads)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: {tuple(state[k].shape)} in file, {tuple(v.shape)} in model"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = key_differences(missing, unexpected)
        if shapes:
            parts.append(f"shape mismatches {list_keys(shapes)}")
        msg = f"{source}: state dict does not match the model: " + "; ".join(parts)
        if strict:
            raise StateDictMismatchError(msg + " (pass strict=False to load the rest)")
        logging.warning(msg + " (strict=False: loading the matching keys)")
        shape_keys = {s.split(":")[0] for s in shapes}
        state = {k: v for k, v in state.items() if k not in shape_keys}
    model.load_state_dict(state, strict=strict)
    return missing, unexpected


def build_model_from_file(task_cls, config_file: Optional[PathLike] = None,
                          model_file: Optional[PathLike] = None, device: str = "cpu",
                          strict: bool = True):
    """ESPnet's ``AbsTask.build_model_from_file`` with the safe loaders; ``(model, args)``."""
    from espnet2.train.abs_espnet_model import AbsESPnetModel

    if config_file is None:
        if model_file is None:
            raise ValueError("give config_file, or model_file with config.yaml beside it")
        config_file = Path(model_file).parent / "config.yaml"
    config_file = Path(config_file)
    logging.info(f"config file: {config_file}")
    args = argparse.Namespace(**load_yaml_config(config_file))
    model = task_cls.build_model(args)
    if not isinstance(model, AbsESPnetModel):
        raise RuntimeError(f"model must inherit {AbsESPnetModel.__name__}, but got {type(model)}")
    if getattr(args, "use_adapter", False):
        from espnet2.layers.create_adapter import create_adapter

        create_adapter(model, args.adapter, args.adapter_conf)
    if model_file is not None:
        state = load_model_state(model_file, map_location="cpu")
        load_into_model(model, state, strict=strict, source=model_file)
    if device == "mps":
        model.to("mps", dtype=torch.float32)
    else:
        model.to(device)
    return model, args


def _name_problem(name: str) -> Optional[str]:
    if not name or name.startswith(("/", "\\")) or name[1:2] == ":":  # ":": a Windows drive
        return "is an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "contains '..'"
    return None


def _resolve_inside(start: List[str], target: str, links: set) -> Optional[str]:
    """A problem with link ``target`` from ``start`` (outside the root, through a link), or None."""
    if target.startswith("/"):
        return f"points to the absolute path {target!r}"
    stack = list(start)
    parts = [p for p in target.split("/") if p not in ("", ".")]
    for i, comp in enumerate(parts):
        if comp == "..":
            if not stack:
                return f"points outside the output directory ({target!r})"
            stack.pop()
            continue
        stack.append(comp)
        if i < len(parts) - 1 and "/".join(stack) in links:
            return f"resolves through the symbolic link {'/'.join(stack)!r} ({target!r})"
    return None


def check_archive(archive: PathLike) -> None:
    """UnsafeFileError naming every archive entry that would land outside the output
    directory (absolute / ``..`` names, under or leaving through links, devices, FIFOs)."""
    archive = Path(archive)
    bad: List[str] = []
    if archive.suffix == ".zip":  # as espnet2.main_funcs.pack_funcs.Archiver decides
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{archive}: not a zip archive ({e})") from e
        with zf:
            for info in zf.infolist():
                problem = _name_problem(info.filename) or (
                    "is a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else None)
                if problem:
                    bad.append(f"{info.filename!r} {problem}")
    else:
        try:
            tf = tarfile.open(archive)
        except tarfile.TarError as e:
            raise ValueError(f"{archive}: not a tar archive ({e})") from e
        with tf:
            members = tf.getmembers()
        links = {posixpath.normpath(m.name) for m in members if m.issym()}
        for m in members:
            problem = _name_problem(m.name)
            parts = posixpath.normpath(m.name).split("/")
            under = [d for d in ("/".join(parts[:i]) for i in range(1, len(parts))) if d in links]
            if problem is None and under:
                problem = f"is under the symbolic link {under[0]!r}"
            if problem is None and m.issym():
                problem = _resolve_inside(parts[:-1], m.linkname, links)
            elif problem is None and m.islnk():
                if _name_problem(m.linkname):
                    problem = f"is a hard link to {m.linkname!r} outside the directory"
                else:
                    problem = _resolve_inside([], m.linkname, links)
            elif problem is None and (m.ischr() or m.isblk() or m.isfifo()):
                problem = "is a device or FIFO"
            if problem:
                bad.append(f"{m.name!r} {problem}")
    if bad:
        raise UnsafeFileError(
            f"{archive}: refused to unpack; nothing was extracted. Unsafe entries: "
            + "; ".join(bad[:20])
            + (f" ... ({len(bad)} in all)" if len(bad) > 20 else ""))


def check_unpacked_paths(archive: PathLike, outdir: Path, files: Mapping[str, str]) -> None:
    """Refuse a ``meta.yaml`` whose file entries resolve outside ``outdir``."""
    root = os.path.realpath(outdir)
    for key, value in files.items():
        real = os.path.realpath(value)
        if os.path.commonpath([root, real]) != root:
            raise UnsafeFileError(
                f"{archive}: refused: meta.yaml entry {key}={value!r} is outside {outdir}")
