"""Shared file I/O: atomic writes (a temporary file beside the target renamed onto it, with
the mode ``open(path, "w")`` would give; never half a file) and Kaldi-style maps."""

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Container, Dict, Iterator, List, Mapping, Optional, Sequence, Union

PathLike = Union[str, Path]

# <utt> <why>: the utterances of a data directory whose ``text`` line may be empty.
EMPTY_TEXT_FILE = "utt2empty_text"


class DataFileError(ValueError):
    """A Kaldi-style data file (or a data directory) is malformed."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp", mode_from: Optional[PathLike] = None
                ) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, renamed onto it when the block ends (removed on
    an exception); ``mode_from``: copy that file's permission bits instead of the umask's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if mode_from is not None:
            shutil.copymode(mode_from, tmp)
        else:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def atomic_write_text(path: PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_copy(src: PathLike, dst: PathLike, keep_mode: bool = False) -> None:
    """Copy ``src`` to ``dst`` atomically; nothing to do when they are one file."""
    if Path(dst).exists() and os.path.samefile(src, dst):
        return
    with atomic_path(dst, mode_from=src if keep_mode else None) as tmp:
        shutil.copyfile(src, tmp)


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_symlink(target: PathLike, link: PathLike) -> str:
    """Point ``link`` at ``target`` (relative, atomic; a copy without symlink support);
    returns ``"symlink"`` or ``"copy"``."""
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
        atomic_copy(target, link)
        return "copy"
    try:
        os.replace(tmp, link)
    finally:
        if tmp.is_symlink():
            tmp.unlink()
    return "symlink"


def sha256sum(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_kaldi_map(path: PathLike, allow_empty_value: bool = False, check_sorted: bool = True
                   ) -> Dict[str, str]:
    """``<key> <value...>`` lines as an ordered dict; DataFileError naming file and line for
    non-UTF-8, empty lines / values (a ``text``'s ``utt2empty_text`` ones allowed), duplicate
    or (``check_sorted``) unsorted keys."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    may_be_empty: Container[str] = ()
    if path.name == "text" and (path.parent / EMPTY_TEXT_FILE).is_file():
        may_be_empty = read_kaldi_map(path.parent / EMPTY_TEXT_FILE, check_sorted=False)
    out: Dict[str, str] = {}
    prev = None
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFileError(
                    f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})")
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                raise DataFileError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            if not value and not allow_empty_value and key not in may_be_empty:
                raise DataFileError(f"{path}:{lineno}: utterance {key} has an empty value")
            if key in out:
                raise DataFileError(f"{path}:{lineno}: duplicate id {key}")
            if check_sorted and prev is not None and key < prev:
                raise DataFileError(
                    f"{path}:{lineno}: id {key} comes after {prev}; "
                    "files must be sorted in C order (LC_ALL=C sort)")
            out[key] = value
            prev = key
    return out


def write_kaldi_map(path: PathLike, mapping: Mapping[str, Any]) -> None:
    """Write ``<key> <value>`` lines sorted in C order (atomically)."""
    lines = []
    for key in sorted(mapping):
        value = str(mapping[key])
        if any(c.isspace() for c in key):
            raise DataFileError(f"{path}: id {key!r} contains white space")
        lines.append(f"{key} {value}\n" if value != "" else f"{key}\n")
    atomic_write_text(path, "".join(lines))


def read_token_list(value: Union[None, PathLike, Sequence[str]]) -> Optional[List[str]]:
    """A token list from a file (one a line, blank lines skipped) or a list; None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        with open(value, encoding="utf-8") as f:
            return [line.rstrip("\n").rstrip("\r") for line in f if line.strip()]
    return list(value)
