"""Kaldi-style data directories: writing, validation (naming file, line and utterance) and repair.
An empty transcript is allowed only for the utterances listed in ``utt2empty_text``."""

import contextlib
import datetime
import itertools
import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from espnet_ser.utils.io import (  # noqa: F401  (re-exported: the data-file API)
    EMPTY_TEXT_FILE, DataFileError, PathLike, atomic_path, atomic_write_text, read_kaldi_map,
    write_kaldi_map)

REQUIRED_FILES = ("wav.scp", "text", "utt2spk", "utt2emo")
# Per-utterance files that, when present, must cover exactly the same utterances.
OPTIONAL_UTT_FILES = ("utt2dim", "utt2personality", "utt2gender", "utt2listener", "utt2fold",
                      "utt2dialog")

# utt2personality: the speaker's Big-Five traits then the listener's (O C E A N each).
PERSONALITY_FILE, PERSONALITY_DIM = "utt2personality", 10

# Three-letter special tokens of ESPnet / Kaldi / sentencepiece token lists that are not emotions.
RESERVED_CODES = frozenset(
    {"unk", "sos", "eos", "pad", "bos", "cls", "sep", "sil", "spn", "nsn", "oov"})


DataDirError = DataFileError  # one error for a data file and for a data directory


def emotion_token(code: str) -> str:
    """Return the text token of an emotion code: ``ang`` -> ``<ang>``."""
    if not re.fullmatch(r"[a-z]{3}", code) or code in RESERVED_CODES:
        raise ValueError(f"emotion codes are three lowercase letters other than "
                         f"{sorted(RESERVED_CODES)}, got {code!r}")
    return f"<{code}>"


def emotion_of_token(token: str) -> Optional[str]:
    """Return the emotion code of a token such as ``<ang>``, or None for other tokens."""
    m = re.fullmatch(r"<([a-z]{3})>", token)
    return m.group(1) if m and m.group(1) not in RESERVED_CODES else None


def parse_emotions(value: Union[None, str, Sequence[str]]) -> List[str]:
    """Emotion codes from a list or a string, separated by spaces or commas (each checked
    by :func:`emotion_token`; a code given twice is a ValueError); None gives ``[]``."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    codes = [c for item in items for c in str(item).replace(",", " ").split()]
    for code in codes:
        emotion_token(code)
    if len(set(codes)) != len(codes):
        raise ValueError(f"duplicate emotion codes (listed twice): {' '.join(codes)}")
    return codes


def empty_text_utts(data_dir: PathLike) -> Dict[str, str]:
    """``{utt: why}`` from ``data_dir/utt2empty_text``, or ``{}`` when there is none."""
    path = Path(data_dir) / EMPTY_TEXT_FILE
    return read_kaldi_map(path, check_sorted=False) if path.is_file() else {}


def _spk2utts(utt2spk: Mapping[str, str]) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return out


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> Dict[str, str]:
    return {spk: " ".join(utts) for spk, utts in _spk2utts(utt2spk).items()}


def write_data_dir(data_dir: PathLike, fields: Mapping[str, Mapping[str, str]],
                   emotions: Optional[Sequence[str]] = None) -> int:
    """Write ``{filename: {utt: value}}`` (REQUIRED_FILES at least) and the derived
    ``spk2utt``, validate; return the number of utterances."""
    data_dir = Path(data_dir)
    missing = [name for name in REQUIRED_FILES if name not in fields]
    if missing:
        raise DataDirError(f"{data_dir}: cannot write without {', '.join(missing)}")
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, mapping in fields.items():
        write_kaldi_map(data_dir / name, mapping)
    write_kaldi_map(data_dir / "spk2utt", spk2utt_from_utt2spk(fields["utt2spk"]))
    return validate_data_dir(data_dir, emotions=emotions)


# At most this many problems are spelled out in one DataDirError message.
MAX_PROBLEMS_SHOWN = 50


class KaldiLine(NamedTuple):
    """One line of a Kaldi map file as read by :func:`scan_kaldi_file`."""
    lineno: int
    key: str  # "" for an empty line; undecodable bytes appear as backslash escapes
    value: str  # without leading/trailing spaces and tabs
    problem: Optional[str]  # why the line is malformed, None if it is well formed
    repairable: bool  # the problem is only white space that fix_data_dir can normalise


def _odd_char(s: str) -> Optional[str]:
    """The first control or white-space character of ``s`` other than space and tab."""
    for c in s:
        if c in " \t":
            continue
        if ord(c) < 0x20 or c == "\x7f" or c.isspace():
            return c
    return None


def id_problem(ident: str) -> Optional[str]:
    """Why ``ident`` is not usable as an utterance or speaker id, or None."""
    if not ident:
        return "is empty"
    if "/" in ident:
        return "contains '/'"
    if ".." in ident:
        return "contains '..'"
    for c in ident:
        if c.isspace():
            return f"contains white space ({c!r})"
        if ord(c) < 0x20 or c == "\x7f":
            return f"contains a control character ({c!r})"
    return None


def _show(s: str) -> str:
    return s if s.isprintable() else repr(s)


def scan_kaldi_file(path: PathLike) -> List[KaldiLine]:
    """Every line of a ``<key> <value...>`` file, with its problem if any (ids unchecked)."""
    chunks = Path(path).read_bytes().split(b"\n")
    if chunks[-1] == b"":
        chunks.pop()
    out: List[KaldiLine] = []
    for lineno, raw in enumerate(chunks, 1):
        problem, repairable = None, True
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.decode("utf-8", "backslashreplace")
            problem = f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
            repairable = False
        if line.endswith("\r"):
            line = line[:-1]
            problem = problem or "carriage return at the end (DOS line ending)"
        stripped = line.lstrip(" \t")
        if stripped != line and stripped.strip(" \t"):
            problem = problem or "leading white space"
        line = stripped.rstrip(" \t")
        if not line:
            out.append(KaldiLine(lineno, "", "", problem or "empty line", True))
            continue
        key, value = re.match(r"([^ \t]*)[ \t]*(.*)\Z", line, re.S).groups()
        c = _odd_char(value)
        if c is not None and repairable:
            problem = f"character {c!r} in the value (only spaces and tabs separate fields)"
            repairable = False
        out.append(KaldiLine(lineno, key, value, problem, repairable))
    return out


def _read_checked(
    path: Path, problems: List[str], allow_empty_value: bool, what: str = "utterance"
) -> Dict[str, Tuple[int, str]]:
    """Scan a map file, append every problem to ``problems``; return key -> (line, value)."""
    out: Dict[str, Tuple[int, str]] = {}
    prev = None
    for ln in scan_kaldi_file(path):
        where = f"{path}:{ln.lineno}"
        if not ln.key:
            problems.append(f"{where}: {ln.problem}")
            continue
        key = _show(ln.key)
        if ln.problem:
            problems.append(f"{where}: {what} {key}: malformed line: {ln.problem}")
        bad_id = id_problem(ln.key)
        if bad_id:
            problems.append(f"{where}: {what} id {key} {bad_id}")
        if not ln.value and not allow_empty_value:
            problems.append(f"{where}: {what} {key} has an empty value (malformed line)")
        if ln.key in out:
            problems.append(f"{where}: duplicate id {key} (first on line {out[ln.key][0]})")
            continue
        if prev is not None and ln.key < prev:
            problems.append(f"{where}: id {key} comes after {_show(prev)}; "
                            "files must be sorted in C order (LC_ALL=C sort)")
        out[ln.key] = (ln.lineno, ln.value)
        prev = ln.key
    return out


def _raise_problems(problems: List[str]) -> None:
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS_SHOWN]
    msg = "\n".join(shown)
    if len(problems) > len(shown):
        msg += f"\n... and {len(problems) - len(shown)} more ({len(problems)} problems in all)"
    err = DataDirError(msg)
    err.problems = list(problems)
    raise err


def _per_utt_files(d: Path, require: Sequence[str]) -> List[str]:
    names = dict.fromkeys(list(REQUIRED_FILES) + list(require) + list(OPTIONAL_UTT_FILES))
    return [n for n in names if n != "spk2utt" and (d / n).is_file()]


def _check_spk2utt(d: Path, utt2spk: Dict[str, Tuple[int, str]], problems: List[str]) -> None:
    path = d / "spk2utt"
    spk2utt = _read_checked(path, problems, allow_empty_value=False, what="speaker")
    expected = _spk2utts({utt: spk for utt, (_, spk) in utt2spk.items()})
    seen: Dict[str, str] = {}
    for spk, (lineno, value) in spk2utt.items():
        head = f"{path}:{lineno}: speaker {_show(spk)} does not agree with utt2spk: "
        utts = re.split(r"[ \t]+", value)
        prev = None
        for utt in utts:
            shown = _show(utt)
            if utt in seen:
                problems.append(head + f"utterance {shown} is listed twice "
                                f"(also under {_show(seen[utt])})")
                continue
            seen[utt] = spk
            if utt not in utt2spk:
                problems.append(head + f"utterance {shown} is not in utt2spk")
            elif utt2spk[utt][1] != spk:
                problems.append(head + f"utterance {shown} is listed here but utt2spk:"
                                f"{utt2spk[utt][0]} gives it speaker {_show(utt2spk[utt][1])}")
            if prev is not None and utt < prev:
                problems.append(head + f"utterance {shown} comes after {_show(prev)}; "
                                "utterances must be sorted in C order")
            prev = utt
        for utt in expected.get(spk, []):
            if utt not in utts:
                problems.append(head + f"utterance {_show(utt)} (utt2spk:{utt2spk[utt][0]}) is missing")
    for spk, utts in expected.items():
        if spk not in spk2utt:
            problems.append(
                f"{path}: speaker {_show(spk)} is missing, but utt2spk:{utt2spk[utts[0]][0]} "
                f"gives it to utterance {_show(utts[0])}"
                + (f" ({len(utts)} utterances in all)" if len(utts) > 1 else ""))


def _data_dir(data_dir: PathLike, require: Sequence[str], why: str = "") -> Path:
    d = Path(data_dir)
    if not d.is_dir():
        raise DataDirError(f"{d}: not a directory")
    missing = [name for name in require if not (d / name).is_file()]
    if missing:
        raise DataDirError(f"{d}: missing {', '.join(missing)}{why}")
    return d


def _refused(d: Path, name: str, maps: Mapping[str, Mapping[str, Tuple[int, str]]],
             may_be_empty: Mapping[str, object], emotions: Optional[Sequence[str]],
             allow_commands: bool) -> List[Tuple[str, str, str]]:
    """``(utt, drop reason, message)`` of the values of ``maps[name]`` ({utt: (line, value)})
    that validate_data_dir refuses and fix_data_dir drops: an empty transcript (not in
    ``may_be_empty``), an unknown emotion, a wav.scp command."""
    out = []
    for utt, (lineno, value) in maps.get(name, {}).items():
        where, shown = f"{d / name}:{lineno}", _show(utt)
        if name == "text" and not value.strip() and utt not in may_be_empty:
            note = f" (not listed in {EMPTY_TEXT_FILE})" if may_be_empty else ""
            out.append((utt, "empty transcript", f"{where}: utterance {shown} has an empty "
                        f"transcript{note}"))
        elif name == "utt2emo" and emotions is not None and value not in emotions:
            out.append((utt, "unknown emotion", f"{where}: utterance {shown} has unknown emotion "
                        f"{value!r} (known: {' '.join(sorted(set(emotions)))})"))
        elif name == "wav.scp" and value.endswith("|") and not allow_commands:
            out.append((utt, "wav.scp command (keep with --allow_commands true)",
                        f"{d / name} line {lineno}: utterance {shown} is a command (ends with "
                        "'|'); commands are not run unless you pass --allow_commands true"))
    return out


def _personality_problem(value: str) -> Optional[str]:
    """Why a utt2personality value is not ten finite numbers, or None."""
    fields = value.split()
    if len(fields) != PERSONALITY_DIM:
        return (f"expected {PERSONALITY_DIM} numbers (speaker O C E A N, listener O C E A N), "
                f"got {len(fields)} field(s)")
    for i, f in enumerate(fields, 1):
        try:
            ok = math.isfinite(float(f))
        except ValueError:
            ok = False
        if not ok:
            return f"field {i} {f!r} is not a finite number"
    return None


def read_personality(path: PathLike) -> Dict[str, np.ndarray]:
    """``utt2personality`` as utt -> float32 ``(10,)`` traits; DataFileError naming file and line."""
    out = {}
    # read_kaldi_map refuses empty lines, so the n-th entry is on line n
    for lineno, (utt, value) in enumerate(read_kaldi_map(path, check_sorted=False).items(), 1):
        bad = _personality_problem(value)
        if bad:
            raise DataFileError(f"{path}:{lineno}: utterance {_show(utt)}: {bad}")
        out[utt] = np.array(value.split(), dtype=np.float32)
    return out


def validate_data_dir(data_dir: PathLike, emotions: Optional[Sequence[str]] = None,
                      require: Sequence[str] = REQUIRED_FILES, check_audio_exists: bool = False,
                      allow_commands: bool = False) -> int:
    """Check a data directory; raise DataDirError listing every problem with its file, line
    and utterance or speaker (wav.scp commands are never run). Returns the utterance count."""
    d = _data_dir(data_dir, require)
    problems: List[str] = []
    present = _per_utt_files(d, require)
    maps = {name: _read_checked(d / name, problems, allow_empty_value=(name == "text"))
            for name in present}
    union = sorted(set().union(*maps.values())) if maps else []
    for utt in union:
        first = next(n for n in present if utt in maps[n])
        for name in present:
            if utt not in maps[name]:
                problems.append(f"{d / first}:{maps[first][utt][0]}: utterance {_show(utt)} "
                                f"is in {first} but not in {name}")
    may_be_empty = _read_checked(d / EMPTY_TEXT_FILE, problems, allow_empty_value=False) \
        if "text" in maps and (d / EMPTY_TEXT_FILE).is_file() else {}
    for name in ("text", "utt2emo"):
        problems += [msg for _, _, msg in _refused(d, name, maps, may_be_empty, emotions,
                                                   allow_commands)]
    for utt, (lineno, value) in maps.get(PERSONALITY_FILE, {}).items():
        bad = _personality_problem(value)
        if bad:
            problems.append(f"{d / PERSONALITY_FILE}:{lineno}: utterance {_show(utt)}: {bad}")
    if "utt2spk" in maps:
        for utt, (lineno, spk) in maps["utt2spk"].items():
            bad = id_problem(spk)
            if bad and spk:
                problems.append(f"{d / 'utt2spk'}:{lineno}: utterance {_show(utt)}: speaker id "
                                f"{_show(spk)} {bad}")
        if (d / "spk2utt").is_file():
            _check_spk2utt(d, maps["utt2spk"], problems)
    problems += [msg for _, _, msg in _refused(d, "wav.scp", maps, may_be_empty, emotions,
                                               allow_commands)]
    if check_audio_exists:
        for utt, (lineno, wav) in maps.get("wav.scp", {}).items():
            # a command is never run, so its audio cannot be checked
            if wav and not wav.endswith("|") and not Path(wav).is_file():
                problems.append(f"{d / 'wav.scp'}:{lineno}: utterance {_show(utt)}: "
                                f"no such file {wav}")
    _raise_problems(problems)
    return len(union)


class FixReport(NamedTuple):
    """What :func:`fix_data_dir` did."""
    kept: int
    total: int
    dropped: Dict[str, List[str]]  # reason -> dropped utterance ids
    repaired_lines: int  # lines whose white space was normalised, or dropped as repeats
    backup: Path
    untouched: List[str]  # other files of the directory, left as they were


def _new_backup_dir(d: Path) -> Path:
    root = d / ".backup"
    root.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in itertools.count():
        p = root / (stamp if i == 0 else f"{stamp}-{i}")
        with contextlib.suppress(FileExistsError):
            p.mkdir()
            return p


def _copy_durably(src: Path, dst: Path) -> None:
    shutil.copy2(src, dst)
    with open(dst, "rb") as f:
        os.fsync(f.fileno())
    if src.read_bytes() != dst.read_bytes():
        raise OSError(f"{dst}: backup copy differs from {src}")


def fix_data_dir(data_dir: PathLike, emotions: Optional[Sequence[str]] = None,
                 allow_commands: bool = False) -> FixReport:
    """Repair a data directory in place (originals kept in ``.backup/<time>/``): drop the
    utterances validate_data_dir would refuse, normalise, sort, rebuild ``spk2utt``, install
    all files or none. Raises DataDirError, changing nothing, if nothing would remain."""
    d = _data_dir(data_dir, REQUIRED_FILES, "; cannot repair without it")
    present = _per_utt_files(d, REQUIRED_FILES)
    reasons: Dict[str, str] = {}
    repaired = 0
    tables: Dict[str, Dict[str, Tuple[int, str]]] = {}
    for name in present:
        table: Dict[str, Tuple[int, str]] = {}
        for ln in scan_kaldi_file(d / name):
            if not ln.key:
                repaired += 1
                continue
            if ln.problem and ln.repairable:
                repaired += 1
            if (ln.problem and not ln.repairable) or (not ln.value and name != "text"):
                reasons.setdefault(ln.key, f"malformed line in {name}")
            if ln.key in table:
                if table[ln.key][1] == ln.value:
                    repaired += 1
                else:
                    reasons.setdefault(ln.key, f"duplicate id in {name}")
                continue
            table[ln.key] = (ln.lineno, ln.value)
        tables[name] = table
    union = set().union(*tables.values())
    for utt in sorted(union):
        if id_problem(utt):
            reasons.setdefault(utt, "invalid id")
    for utt, (_, spk) in tables["utt2spk"].items():
        if id_problem(spk):
            reasons.setdefault(utt, "invalid speaker id")
    for name in present:
        for utt in sorted(union - tables[name].keys()):
            reasons.setdefault(utt, f"not in {name}")
    may_be_empty = empty_text_utts(d)
    for name in ("text", "utt2emo", "wav.scp"):
        for utt, reason, _ in _refused(d, name, tables, may_be_empty, emotions, allow_commands):
            reasons.setdefault(utt, reason)
    dropped: Dict[str, List[str]] = {}
    for utt in sorted(reasons):
        dropped.setdefault(reasons[utt], []).append(utt)
    kept = sorted(union - reasons.keys())
    if not kept:
        counts = ", ".join(f"{len(v)} {k}" for k, v in dropped.items())
        raise DataDirError(
            f"{d}: no utterance would remain (of {len(union)}: {counts}); nothing was changed")
    texts = {name: "".join(f"{u} {tables[name][u][1]}\n" for u in kept) for name in present}
    spk2utt = spk2utt_from_utt2spk({u: tables["utt2spk"][u][1] for u in kept})
    texts["spk2utt"] = "".join(f"{s} {spk2utt[s]}\n" for s in sorted(spk2utt))
    if may_be_empty:
        texts[EMPTY_TEXT_FILE] = "".join(f"{u} {may_be_empty[u]}\n" for u in kept if u in may_be_empty)
    names = list(texts)
    untouched = sorted(p.name for p in d.iterdir()
                       if p.is_file() and p.name not in texts and not p.name.startswith("."))

    staging = Path(tempfile.mkdtemp(prefix=".fix_data_dir.", dir=str(d)))
    try:
        for name in names:
            with atomic_path(staging / name,
                             mode_from=d / name if (d / name).is_file() else None) as tmp:
                tmp.write_text(texts[name], encoding="utf-8")
        validate_data_dir(staging, emotions=emotions, allow_commands=allow_commands)
        backup = _new_backup_dir(d)
        for name in names:
            if (d / name).is_file():
                _copy_durably(d / name, backup / name)
        install_sets(staging, d, names)  # all files or none
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    validate_data_dir(d, emotions=emotions, allow_commands=allow_commands)
    for reason, utts in dropped.items():
        for utt in utts:
            logging.info(f"{d}: dropped {_show(utt)}: {reason}")
    return FixReport(len(kept), len(union), dropped, repaired, backup, untouched)


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def install_sets(staging: Path, out_dir: Path, names: Sequence[str]) -> None:
    """Move ``staging/<name>`` to ``out_dir/<name>``, all or nothing: the sets replaced wait
    in ``staging/.previous`` and come back if a move fails. Nothing else is touched."""
    backup = staging / ".previous"
    backup.mkdir()
    done = []  # (name, had_previous, new_moved)
    try:
        for name in names:
            final = out_dir / name
            had = final.exists() or final.is_symlink()
            done.append([name, had, False])
            if had:
                _move(final, backup / name)
            _move(staging / name, final)
            done[-1][2] = True
    except BaseException:
        for name, had, moved in reversed(done):
            final = out_dir / name
            try:
                if moved:
                    _move(final, staging / name)
                if had and ((backup / name).exists() or (backup / name).is_symlink()):
                    _move(backup / name, final)
            except OSError as e:
                logging.error("could not restore %s (%s); the previous version is in %s",
                              final, e, backup)
                staging.rename(staging.with_name(staging.name + ".keep"))
                raise
        raise
