"""Kaldi-style data directories: reading, writing and validation.

A data directory holds one file per field, one utterance per line, keys sorted in C
(byte) order::

    wav.scp   <utt> <path>
    text      <utt> <transcript>
    utt2spk   <utt> <speaker>
    spk2utt   <speaker> <utt> <utt> ...
    utt2emo   <utt> <emotion code>

plus optional per-utterance files such as ``utt2dim`` (arousal valence dominance) or
``utt2personality``. Every check fails loudly with the file, line and utterance it is
about, unlike Kaldi's ``validate_data_dir.sh`` which only warns for some of them.
"""

import os
import re
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Sequence, Union

PathLike = Union[str, Path]

REQUIRED_FILES = ("wav.scp", "text", "utt2spk", "utt2emo")
# Per-utterance files that, when present, must cover exactly the same utterances.
OPTIONAL_UTT_FILES = ("utt2dim", "utt2personality", "utt2gender", "utt2listener", "utt2fold")

_EMOTION_TOKEN_RE = re.compile(r"^<([a-z]{3})>$")
# Three-letter special tokens of ESPnet / Kaldi / sentencepiece token lists that look
# like ``<xyz>`` but are not emotions.
RESERVED_CODES = frozenset(
    {"unk", "sos", "eos", "pad", "bos", "cls", "sep", "sil", "spn", "nsn", "oov"}
)


_UMASK = os.umask(0)
os.umask(_UMASK)


class DataDirError(ValueError):
    """A data directory (or one of its files) is malformed."""


def emotion_token(code: str) -> str:
    """Return the text token of an emotion code: ``ang`` -> ``<ang>``."""
    if not re.fullmatch(r"[a-z]{3}", code) or code in RESERVED_CODES:
        raise ValueError(
            f"emotion codes are three lowercase letters other than {sorted(RESERVED_CODES)}, "
            f"got {code!r}"
        )
    return f"<{code}>"


def emotion_of_token(token: str) -> Optional[str]:
    """Return the emotion code of a token such as ``<ang>``, or None for other tokens."""
    m = _EMOTION_TOKEN_RE.match(token)
    return m.group(1) if m and m.group(1) not in RESERVED_CODES else None


def read_kaldi_map(
    path: PathLike,
    allow_empty_value: bool = False,
    check_sorted: bool = True,
) -> Dict[str, str]:
    """Read ``<key> <value...>`` lines into an ordered dict.

    Raises DataDirError naming the file and line for an empty value, a duplicate
    key, or a key out of C order (when ``check_sorted``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    out: Dict[str, str] = {}
    prev = None
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: utterance {key} has an empty value")
            if key in out:
                raise DataDirError(f"{path}:{lineno}: duplicate id {key}")
            if check_sorted and prev is not None and key < prev:
                raise DataDirError(
                    f"{path}:{lineno}: id {key} comes after {prev}; "
                    "files must be sorted in C order (LC_ALL=C sort)"
                )
            out[key] = value
            prev = key
    return out


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write a file through a temporary file and rename, so a crash leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_kaldi_map(path: PathLike, mapping: Mapping[str, str]) -> None:
    """Write ``<key> <value>`` lines sorted in C order (atomically)."""
    lines = []
    for key in sorted(mapping):
        value = str(mapping[key])
        if any(c.isspace() for c in key):
            raise DataDirError(f"{path}: id {key!r} contains white space")
        lines.append(f"{key} {value}\n" if value != "" else f"{key}\n")
    atomic_write_text(path, "".join(lines))


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> Dict[str, str]:
    spk2utts: Dict[str, list] = {}
    for utt in sorted(utt2spk):
        spk2utts.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in spk2utts.items()}


def write_data_dir(
    data_dir: PathLike,
    fields: Mapping[str, Mapping[str, str]],
    emotions: Optional[Sequence[str]] = None,
) -> int:
    """Write a data directory from ``{filename: {utt: value}}`` and validate it.

    ``fields`` must contain every file of REQUIRED_FILES; ``spk2utt`` is derived from
    ``utt2spk``. Returns the number of utterances.
    """
    data_dir = Path(data_dir)
    missing = [name for name in REQUIRED_FILES if name not in fields]
    if missing:
        raise DataDirError(f"{data_dir}: cannot write without {', '.join(missing)}")
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, mapping in fields.items():
        write_kaldi_map(data_dir / name, mapping)
    write_kaldi_map(data_dir / "spk2utt", spk2utt_from_utt2spk(fields["utt2spk"]))
    return validate_data_dir(data_dir, emotions=emotions)


def _compare_keys(ref_name: str, ref: Iterable[str], name: str, other: Iterable[str], d: Path):
    ref_set, other_set = set(ref), set(other)
    only_ref = sorted(ref_set - other_set)
    only_other = sorted(other_set - ref_set)
    if only_ref:
        raise DataDirError(
            f"{d}: utterance {only_ref[0]} is in {ref_name} but not in {name}"
            + (f" ({len(only_ref)} utterances in all)" if len(only_ref) > 1 else "")
        )
    if only_other:
        raise DataDirError(
            f"{d}: utterance {only_other[0]} is in {name} but not in {ref_name}"
            + (f" ({len(only_other)} utterances in all)" if len(only_other) > 1 else "")
        )


def validate_data_dir(
    data_dir: PathLike,
    emotions: Optional[Sequence[str]] = None,
    require: Sequence[str] = REQUIRED_FILES,
    check_audio_exists: bool = False,
) -> int:
    """Check a data directory; raise DataDirError naming file, line and utterance.

    Checks: required files exist; every file is sorted and free of duplicates; all
    per-utterance files cover the same utterances; no empty transcript; emotion labels
    are in ``emotions`` (when given); ``spk2utt`` agrees with ``utt2spk``; with
    ``check_audio_exists`` every wav.scp path exists. Returns the number of utterances.
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise DataDirError(f"{d}: not a directory")
    for name in require:
        if not (d / name).is_file():
            raise DataDirError(f"{d}: missing {name}")
    present = [n for n in list(require) + list(OPTIONAL_UTT_FILES) if (d / n).is_file()]
    # text may legitimately be checked for empty transcripts with a clearer message.
    maps = {}
    for name in present:
        maps[name] = read_kaldi_map(d / name, allow_empty_value=(name == "text"))
    ref_name = present[0]
    for name in present[1:]:
        _compare_keys(ref_name, maps[ref_name], name, maps[name], d)
    if "text" in maps:
        for lineno, (utt, txt) in enumerate(maps["text"].items(), 1):
            if not txt.strip():
                raise DataDirError(f"{d / 'text'}:{lineno}: utterance {utt} has an empty transcript")
    if "utt2emo" in maps and emotions is not None:
        allowed = set(emotions)
        for lineno, (utt, emo) in enumerate(maps["utt2emo"].items(), 1):
            if emo not in allowed:
                raise DataDirError(
                    f"{d / 'utt2emo'}:{lineno}: utterance {utt} has unknown emotion {emo!r} "
                    f"(known: {' '.join(sorted(allowed))})"
                )
    if "utt2spk" in maps and (d / "spk2utt").is_file():
        spk2utt = read_kaldi_map(d / "spk2utt")
        expected = spk2utt_from_utt2spk(maps["utt2spk"])
        for lineno, (spk, utts) in enumerate(spk2utt.items(), 1):
            if expected.get(spk) != utts:
                raise DataDirError(
                    f"{d / 'spk2utt'}:{lineno}: speaker {spk} does not agree with utt2spk"
                )
        if set(expected) != set(spk2utt):
            spk = sorted(set(expected) ^ set(spk2utt))[0]
            raise DataDirError(f"{d}: speaker {spk} is in only one of utt2spk and spk2utt")
    if check_audio_exists and "wav.scp" in maps:
        for lineno, (utt, wav) in enumerate(maps["wav.scp"].items(), 1):
            if wav.endswith("|"):
                continue  # a command pipe; cannot be checked without running it
            if not Path(wav).is_file():
                raise DataDirError(f"{d / 'wav.scp'}:{lineno}: utterance {utt}: no such file {wav}")
    return len(maps[ref_name])
