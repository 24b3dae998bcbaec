"""Pack a trained model into an ESPnet model archive (the layout of ``espnet2.bin.pack asr``,
so ESPnet's ``unpack`` reads it) and unpack one."""

import io
import logging
import os
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import yaml

from espnet_ser.utils.io import PathLike, atomic_path
from espnet_ser.utils.safe_load import check_archive, check_unpacked_paths, load_yaml_config

META_CONFIG_KEY = "asr_train_config"
META_MODEL_KEY = "asr_model_file"
# packed beside config.yaml, not in meta.yaml (ESPnet passes meta keys to Speech2Text)
DECODE_CONFIG_NAME = "decode.yaml"

_SKIP_CONFIG_KEYS = frozenset([
    "config", "output_dir", "train_data_path_and_name_and_type",
    "valid_data_path_and_name_and_type", "train_shape_file", "valid_shape_file",
    "init_param", "deepspeed_config", "dist_init_method",
    "wandb_project", "wandb_id", "wandb_entity", "wandb_name",
])
_REQUIRED_FILE_KEYS = frozenset(["token_list", "bpemodel", "stats_file"])

_MODES = {".zip": "zip", ".tar": "w", ".tgz": "w:gz", ".tbz2": "w:bz2", ".txz": "w:xz",
          (".tar", ".gz"): "w:gz", (".tar", ".bz2"): "w:bz2", (".tar", ".xz"): "w:xz"}


def _archive_mode(out: Path) -> str:
    mode = _MODES.get(out.suffix) or _MODES.get(tuple(out.suffixes))
    if mode is None:
        raise ValueError(
            f"{out}: unsupported archive name; use .zip, .tar, .tgz, .tar.gz, .tbz2, .tar.bz2, "
            f".txz or .tar.xz (with no other dot-suffix, e.g. packed_model.zip)")
    return mode


def find_referenced_files(config: Mapping[str, Any], source: PathLike = "config"
                          ) -> Tuple[Dict[str, str], List[str]]:
    """``({key_path: file}, [directories])`` the config's values name (training-only keys
    skipped); FileNotFoundError naming ``source`` for a missing token list, BPE model or stats."""
    files: Dict[str, str] = {}
    dirs: List[str] = []

    def visit(keys: List[str], leaf):
        key_path = ".".join(keys)
        if isinstance(leaf, str) and leaf not in ("", ".", ".."):
            if os.path.isfile(leaf):
                files[key_path] = leaf
            elif os.path.isdir(leaf):
                dirs.append(leaf)
            elif keys[-1] in _REQUIRED_FILE_KEYS:
                raise FileNotFoundError(
                    f"{source}: {key_path}={leaf!r} does not exist (relative paths are "
                    f"relative to the directory training ran in; run from the recipe directory)")
        return leaf

    for key, value in config.items():
        if key not in _SKIP_CONFIG_KEYS and not (
                key == "token_list" and isinstance(value, (list, tuple))):
            _map_leaves(value, visit, [str(key)])
    return files, dirs


def _map_leaves(value, fn: Callable[[List[str], Any], Any], keys: List[str]):
    """``value`` rebuilt with ``fn(key path, leaf)`` for each non-container value under it."""
    if isinstance(value, Mapping):
        return {k: _map_leaves(v, fn, keys + [str(k)]) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_leaves(v, fn, keys + [str(i)]) for i, v in enumerate(value)]
    return fn(keys, value)


def _archive_name(path: PathLike, base: Path) -> Optional[str]:
    """``path`` relative to ``base`` (resolved first, as ESPnet's pack does), None outside it."""
    for candidate, root in ((os.path.realpath(path), os.path.realpath(base)),
                            (os.path.abspath(path), os.path.abspath(base))):
        try:
            return Path(candidate).relative_to(root).as_posix()
        except ValueError:
            continue
    return None


class _Entries:
    """The archive's content: ``{archive name: real source path, or bytes}``."""

    def __init__(self, base: Path):
        self.base = base
        self.content: Dict[str, Union[str, bytes]] = {}
        self.names: Dict[str, str] = {}  # real source path -> archive name
        self.used: Dict[str, str] = {}  # archive name -> real source path

    def name_for(self, src: PathLike) -> str:
        real = os.path.realpath(src)
        if real in self.names:
            return self.names[real]
        name = _archive_name(src, self.base)
        if name is None:  # outside the working directory: keep only the file name
            name = f"external/{Path(src).name}"
            i = 1
            while name in self.used:
                i += 1
                name = f"external/{i}/{Path(src).name}"
        if name in self.used:
            raise ValueError(
                f"two different files would be packed as {name!r}: {self.used[name]} and {real}")
        self.names[real] = name
        self.used[name] = real
        return name

    def add_file(self, src: PathLike, name: Optional[str] = None) -> str:
        name = name or self.name_for(src)
        self.content.setdefault(name, os.path.realpath(src))
        return name

    def add_yaml(self, src: Path, data: Dict[str, Any], replace: Mapping[str, str]) -> str:
        from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

        name = self.name_for(src)
        rewritten = _map_leaves(data, lambda keys, leaf: replace.get(".".join(keys), leaf), [])
        if rewritten == data:
            return self.add_file(src, name)
        text = yaml_no_alias_safe_dump(rewritten, indent=4, sort_keys=False)
        self.content.setdefault(name, text.encode("utf-8"))
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


def _write_archive(path: Path, mode: str, entries: Mapping[str, Union[str, bytes]]) -> None:
    with (zipfile.ZipFile(path, "w") if mode == "zip" else tarfile.open(path, mode)) as archive:
        for name, src in entries.items():
            logging.info(f"adding: {name}")
            if mode == "zip" and isinstance(src, bytes):
                archive.writestr(name, src)
            elif mode == "zip":
                archive.write(src, arcname=name)
            elif isinstance(src, bytes):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(src), time.time()
                info.uid, info.gid = os.getuid(), os.getgid()
                archive.addfile(info, io.BytesIO(src))
            else:
                archive.add(src, arcname=name, recursive=False)


def _meta_yaml(model_name: str, config_name: str) -> bytes:
    """``meta.yaml`` as ``espnet2.main_funcs.pack_funcs.pack`` writes it."""
    meta: Dict[str, Any] = dict(files={META_MODEL_KEY: model_name},
                                yaml_files={META_CONFIG_KEY: config_name},
                                timestamp=time.time(), python=sys.version)
    for module in ("torch", "espnet"):
        try:
            meta[module] = str(__import__(module).__version__)
        except ImportError:
            pass
    return yaml.safe_dump(meta).encode()


def pack_model(config: PathLike, model_file: PathLike, out: PathLike,
               decode_config: Optional[PathLike] = None, option: Iterable[PathLike] = ()
               ) -> Dict[str, Any]:
    """Pack config, model, the files the config names, ``decode.yaml``, sidecar / RESULTS.md /
    feature configs and ``option`` (names relative to the cwd, else ``external/``); returns
    ``{"out", "config", "model_file", "decode_config", "files"}``."""
    config, model_file, out = Path(config), Path(model_file), Path(os.path.abspath(out))
    mode = _archive_mode(out)
    decode_config = Path(decode_config) if decode_config is not None else None
    for p, what in ((config, "config"), (model_file, "model file"), (decode_config, "decode config")):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"{p}: {what} does not exist")

    train_conf = load_yaml_config(config)
    refs, ref_dirs = find_referenced_files(train_conf, source=str(config))
    for d in ref_dirs:
        logging.warning(f"{config}: refers to directory {d}; it is not packed "
                        f"(add it with --option if the model needs it)")
    if decode_config is not None:
        dec_refs, _ = find_referenced_files(load_yaml_config(decode_config),
                                            source=str(decode_config))
        if dec_refs:
            logging.warning(f"{decode_config}: refers to files {sorted(dec_refs.values())}; "
                            f"they are not packed and their paths are not rewritten")

    entries = _Entries(Path.cwd())
    option_names: List[str] = []  # with repeats, removed at the end
    model_name = entries.add_file(model_file)
    replace: Dict[str, str] = {}
    for key_path, value in refs.items():
        name = entries.add_file(value)
        option_names.append(name)
        if value != name:
            replace[key_path] = name
    config_name = entries.add_yaml(config, train_conf, replace)
    decode_name = None
    if decode_config is not None:
        decode_name = (Path(config_name).parent / DECODE_CONFIG_NAME).as_posix()
        real = os.path.realpath(decode_config)
        if entries.used.get(decode_name, real) != real:
            raise ValueError(
                f"{entries.used[decode_name]} would be packed as {decode_name!r}, "
                f"the name reserved for the decode config {decode_config}")
        entries.used[decode_name] = real
        option_names.append(entries.add_file(decode_config, decode_name))
    extras = [Path(os.path.realpath(model_file) + ".json"),
              model_file.with_name(model_file.name + ".json")]
    extras += [config.parent / n for n in ("RESULTS.md", "feats_config.yaml", "gst_feats_config.yaml")]
    for extra in extras:
        if extra.is_file():
            option_names.append(entries.add_file(extra))
    for opt in option:
        option_names.append(entries.add_tree(opt))

    content = {"meta.yaml": _meta_yaml(model_name, config_name)}
    for name in [config_name, model_name] + list(entries.content):
        content.setdefault(name, entries.content[name])
    with atomic_path(out) as tmp:
        _write_archive(tmp, mode, content)
    logging.info(f"Packed {config} and {model_file} into {out}")
    return dict(out=str(out), config=config_name, model_file=model_name, decode_config=decode_name,
                files=[model_name, config_name] + list(dict.fromkeys(option_names)))


def _pick_key(d: Mapping[str, str], preferred: str, suffix: str, archive: Path) -> str:
    if preferred in d:
        return d[preferred]
    keys = [k for k in d if k.endswith(suffix) and not k.startswith("lm_")]
    if len(keys) != 1:
        raise ValueError(f"{archive}: meta.yaml has no {preferred!r} (keys: {sorted(d)})")
    return d[keys[0]]


def unpack_model(archive: PathLike, outdir: PathLike) -> Dict[str, Optional[str]]:
    """Check (:func:`check_archive`) and unpack an archive with ESPnet's ``unpack``; returns
    ``{"config", "model_file", "decode_config" (or None)}``."""
    from espnet2.main_funcs.pack_funcs import unpack

    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    _archive_mode(archive)
    outdir = Path(os.path.abspath(outdir))
    check_archive(archive)
    files = unpack(archive, outdir)
    check_unpacked_paths(archive, outdir, files)
    config = _pick_key(files, META_CONFIG_KEY, "train_config", archive)
    model_file = _pick_key(files, META_MODEL_KEY, "model_file", archive)
    decode = Path(config).parent / DECODE_CONFIG_NAME
    return dict(config=config, model_file=model_file,
                decode_config=str(decode) if decode.is_file() else None)
