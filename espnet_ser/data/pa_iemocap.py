"""PA-IEMOCAP (Big-Five personality labels per IEMOCAP dialogue and speaker gender) joined to the
IEMOCAP 4-class utterances: ``pa_iemocap_all`` and the folds ``fold{k}_{train,valid,test}``
(valid = the F part of session k, test = its M part); layout and rules: egs/pa_iemocap/README.md."""

import csv
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from espnet_ser.data import iemocap
from espnet_ser.data.datadir import PathLike
from espnet_ser.data.iemocap import IemocapError
from espnet_ser.data.prepare import check_out_dir, check_root as _check_root, write_sets

OCEAN_FILE = "ocean.csv"
TIPI_FILE = "tipi_labels.csv"
CORPUS_DIR_NAME = "PA-IEMOCAP"
# The paper's trait order (Openness, Conscientiousness, Extraversion, Agreeableness,
# Neuroticism) and the ocean.csv column of each.
TRAITS = ("O", "C", "E", "A", "N")
TRAIT_COLUMNS = ("OP", "CO", "EX", "AG", "NE")
OCEAN_COLUMNS = ("dialogue_id", "gender") + TRAIT_COLUMNS
GENDERS = ("f", "m")
TRAIT_MIN, TRAIT_MAX = 1.0, 7.0
NUM_RATERS = 6
TIPI_ITEMS = tuple(range(1, 11))
TIPI_COLUMNS = ("dialogue_id", "gender", "tipi") + tuple(f"rater{r}" for r in range(1, NUM_RATERS + 1))
# ocean column -> (item, reversed item) of the TIPI: trait = (t_item + 8 - t_reversed) / 2.
TIPI_FORMULA = {"EX": (1, 6), "AG": (7, 2), "CO": (3, 8), "NE": (4, 9), "OP": (5, 10)}
TIPI_TOLERANCE = 0.01
EMOTIONS = iemocap.DEFAULT_EMOTIONS
# The paper: 10,039 utterances -> 9,980 lexical -> 5,500 in the 4 classes (exc merged into hap).
PAPER_TOTAL = 5500
ALL_SET = "pa_iemocap_all"
SETS_PER_FOLD = ("train", "valid", "test")
# IEMOCAP writes the script number with two digits (Ses01M_script01_1); PA-IEMOCAP drops the
# zero in the M parts of sessions 1, 2, 3 and 5 (Ses01M_script1_1, Ses05M_script1_1b).
_SCRIPT_RE = re.compile(r"^(Ses\d\d[FM]_script)0*(\d+)(_.*)?$")
_DIALOGUE_RE = re.compile(r"^Ses\d\d[FM]_[A-Za-z0-9_]+$")


class PaIemocapError(IemocapError):
    """ocean.csv or tipi_labels.csv holds a row that is missing, malformed or inconsistent."""


def dialogue_key(dialogue: str) -> str:
    """The spelling-independent key of a dialogue: the script number without zero padding
    (``Ses01M_script01_1`` and ``Ses01M_script1_1`` -> ``Ses01M_script1_1``); other names,
    e.g. ``Ses03M_impro05a``, unchanged."""
    m = _SCRIPT_RE.match(dialogue)
    if not m:
        return dialogue
    return f"{m.group(1)}{int(m.group(2))}{m.group(3) or ''}"


def dialogue_of(utt_id: str) -> str:
    """``Ses01F_impro01_M013`` -> ``Ses01F_impro01`` (the id without its last ``_`` part)."""
    iemocap.speaker_of(utt_id)  # raises on an id that is not IEMOCAP's
    return utt_id.rsplit("_", 1)[0]


def gender_of(utt_id: str) -> str:
    """``Ses01F_impro01_M013`` -> ``m`` (the first letter of the last part, lower-case)."""
    return iemocap.speaker_of(utt_id)[-1].lower()


def other_gender(gender: str) -> str:
    return "m" if gender == "f" else "f"


class Ocean(dict):
    """``{(dialogue_key, gender): (O, C, E, A, N)}`` (strings as written in ocean.csv), with
    ``path``, ``lines`` ``{(key, gender): line}`` and ``spelling`` ``{key: dialogue_id}``."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.lines: Dict[Tuple[str, str], int] = {}
        self.spelling: Dict[str, str] = {}

    def where(self, key: str, gender: str) -> str:
        return f"{self.path}:{self.lines[key, gender]}"


def _open_csv(path: Path, required: Sequence[str]):
    """(file, DictReader) with the header checked for the ``required`` columns."""
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise PaIemocapError(f"{path}: cannot read ({e.strerror or e})") from e
    reader = csv.DictReader(f)
    try:
        header = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as e:
        f.close()
        raise PaIemocapError(f"{path}:1: cannot read the header ({e})") from None
    if not header:
        f.close()
        raise PaIemocapError(f"{path}: empty file (expected the header {','.join(required)})")
    header = [h.strip() for h in header]
    reader.fieldnames = header
    missing = [c for c in required if c not in header]
    if missing:
        f.close()
        raise PaIemocapError(f"{path}:1: no column {', '.join(missing)} in the header "
                             f"{','.join(header)} (expected {','.join(required)})")
    return f, reader


def _rows(path: Path, required: Sequence[str]):
    """``(line, {column: stripped value})`` of every row; a short or long row fails."""
    f, reader = _open_csv(path, required)
    with f:
        try:
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise PaIemocapError(f"{where}: more fields than the header has columns")
                if all(v in (None, "") for v in row.values()):
                    continue
                short = [c for c in required if row.get(c) is None]
                if short:
                    raise PaIemocapError(f"{where}: fewer fields than the header (no value for "
                                         f"{', '.join(short)})")
                yield reader.line_num, {k: v.strip() for k, v in row.items()}
        except UnicodeDecodeError:
            raise PaIemocapError(f"{path}:{reader.line_num + 1}: not UTF-8 text") from None
        except csv.Error as e:
            raise PaIemocapError(f"{path}:{reader.line_num}: {e}") from None


def _number(value: str, where: str, what: str, lo: float, hi: float, integer: bool = False):
    try:
        x = int(value) if integer else float(value)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise PaIemocapError(f"{where}: {what} {value!r} is not {kind}") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise PaIemocapError(f"{where}: {what} {value!r} is outside {lo:g}-{hi:g}")
    return x


def _dialogue_and_gender(row: Dict[str, str], where: str) -> Tuple[str, str]:
    dialogue, gender = row["dialogue_id"], row["gender"]
    if not _DIALOGUE_RE.match(dialogue):
        raise PaIemocapError(f"{where}: dialogue_id {dialogue!r} is not an IEMOCAP dialogue "
                             "like Ses01F_impro01")
    if gender not in GENDERS:
        raise PaIemocapError(f"{where}: dialogue {dialogue}: gender {gender!r} is not f or m")
    return dialogue, gender


def read_ocean(path: PathLike) -> Ocean:
    """Read ocean.csv by column name; return ``{(dialogue_key, gender): (O, C, E, A, N)}``
    = the columns (OP, CO, EX, AG, NE) as written. Every dialogue needs an f and an m row."""
    path = Path(path)
    out = Ocean(path)
    for lineno, row in _rows(path, OCEAN_COLUMNS):
        where = f"{path}:{lineno}"
        dialogue, gender = _dialogue_and_gender(row, where)
        for col in TRAIT_COLUMNS:
            _number(row[col], where, f"dialogue {dialogue} {gender}: {col}", TRAIT_MIN, TRAIT_MAX)
        key = dialogue_key(dialogue)
        if (key, gender) in out:
            first = out.spelling[key]
            raise PaIemocapError(
                f"{where}: second row for dialogue {dialogue} gender {gender} (first on line "
                f"{out.lines[key, gender]}" + (f" as {first})" if first != dialogue else ")"))
        if key in out.spelling and out.spelling[key] != dialogue:
            raise PaIemocapError(f"{where}: dialogue {dialogue} is spelled {out.spelling[key]} "
                                 f"on line {out.lines[key, other_gender(gender)]}")
        out[key, gender] = tuple(row[col] for col in TRAIT_COLUMNS)
        out.lines[key, gender] = lineno
        out.spelling[key] = dialogue
    if not out:
        raise PaIemocapError(f"{path}: no rows after the header")
    for key, dialogue in out.spelling.items():
        for gender in GENDERS:
            if (key, gender) not in out:
                other = other_gender(gender)
                raise PaIemocapError(f"{path}: dialogue {dialogue} has no {gender} row (only the "
                                     f"{other} row on line {out.lines[key, other]}); every "
                                     "dialogue needs both speakers")
    return out


def read_tipi(path: PathLike) -> Dict[Tuple[str, str], Dict[int, Tuple[List[int], int]]]:
    """``{(dialogue_key, gender): {item: ([rater1..rater6], line)}}`` of tipi_labels.csv, every
    item 1-10 present once, every rating an integer 1-7."""
    return _read_tipi(Path(path))[0]


def _read_tipi(path: Path):
    """(read_tipi's table, ``{(dialogue_key, gender): (dialogue as written, first line)}``)."""
    raters = [f"rater{r}" for r in range(1, NUM_RATERS + 1)]
    out: Dict[Tuple[str, str], Dict[int, Tuple[List[int], int]]] = {}
    spelling: Dict[Tuple[str, str], Tuple[str, int]] = {}
    for lineno, row in _rows(path, TIPI_COLUMNS):
        where = f"{path}:{lineno}"
        dialogue, gender = _dialogue_and_gender(row, where)
        item = _number(row["tipi"], where, f"dialogue {dialogue} {gender}: tipi item", 1, 10, True)
        ratings = [_number(row[r], where, f"dialogue {dialogue} {gender} item {item}: {r}",
                           1, 7, True) for r in raters]
        key = (dialogue_key(dialogue), gender)
        items = out.setdefault(key, {})
        spelling.setdefault(key, (dialogue, lineno))
        if item in items:
            raise PaIemocapError(f"{where}: second row for dialogue {dialogue} gender {gender} "
                                 f"item {item} (first on line {items[item][1]})")
        items[item] = (ratings, lineno)
    for key, items in out.items():
        missing = [str(i) for i in TIPI_ITEMS if i not in items]
        if missing:
            dialogue, lineno = spelling[key]
            raise PaIemocapError(f"{path}:{lineno}: dialogue {dialogue} gender {key[1]} has no "
                                 f"row for TIPI item(s) {' '.join(missing)}")
    return out, spelling


def tipi_traits(items: Dict[int, Tuple[List[int], int]]) -> Dict[str, float]:
    """``{ocean column: trait}``: (t_item + 8 - t_reversed) / 2 averaged over the raters."""
    out = {}
    for col, (a, b) in TIPI_FORMULA.items():
        per_rater = [(x + 8 - y) / 2 for x, y in zip(items[a][0], items[b][0])]
        out[col] = sum(per_rater) / len(per_rater)
    return out


def check_tipi(ocean: Ocean, tipi_path: PathLike, tolerance: float = TIPI_TOLERANCE) -> float:
    """Check ocean.csv against the TIPI ratings; raise naming every (dialogue, gender, trait)
    off by more than ``tolerance`` and every row only one of the files has. Returns the
    largest difference."""
    tipi_path = Path(tipi_path)
    tipi, tipi_spelling = _read_tipi(tipi_path)
    problems: List[str] = []
    worst = 0.0
    for key, gender in sorted(set(ocean) - set(tipi)):
        problems.append(f"{ocean.where(key, gender)}: dialogue {ocean.spelling[key]} gender "
                        f"{gender} has no rows in {tipi_path}")
    for key, gender in sorted(set(tipi) - set(ocean)):
        dialogue, lineno = tipi_spelling[key, gender]
        problems.append(f"{tipi_path}:{lineno}: dialogue {dialogue} gender {gender} has no row "
                        f"in {ocean.path}")
    for key, gender in sorted(set(ocean) & set(tipi)):
        expected = tipi_traits(tipi[key, gender])
        for col, value in zip(TRAIT_COLUMNS, ocean[key, gender]):
            diff = abs(float(value) - expected[col])
            worst = max(worst, diff)
            if diff > tolerance:
                a, b = TIPI_FORMULA[col]
                problems.append(
                    f"{ocean.where(key, gender)}: dialogue {ocean.spelling[key]} gender {gender} "
                    f"trait {col}: ocean.csv {value}, the TIPI ratings give {expected[col]:.3f} "
                    f"((t{a} + 8 - t{b}) / 2, lines {tipi[key, gender][a][1]} and "
                    f"{tipi[key, gender][b][1]} of {tipi_path}), off by {diff:.3f} > {tolerance:g}")
    if problems:
        raise PaIemocapError(f"{len(problems)} disagreement(s) between {ocean.path} and "
                             f"{tipi_path}:\n" + "\n".join(problems))
    return worst


def check_pa_root(root: PathLike) -> Path:
    """The absolute ``--pa_iemocap_root`` (holding ocean.csv), or raise naming the option."""
    root = _check_root(root, "pa_iemocap_root", PaIemocapError, CORPUS_DIR_NAME, OCEAN_FILE,
                       lambda p: (p / OCEAN_FILE).is_file())
    if not (root / OCEAN_FILE).is_file():
        raise PaIemocapError(f"--pa_iemocap_root {root}: no {OCEAN_FILE} (the PA-IEMOCAP release "
                             f"is {OCEAN_FILE} and {TIPI_FILE})")
    return root


def fold_part(k: int, dialogue: str) -> str:
    """Which set of fold k a dialogue belongs to: test = ``Ses0kM_*``, valid = ``Ses0kF_*``,
    train = the other sessions."""
    session, part = dialogue[:5], dialogue[5]
    if session != f"Ses{k:02d}":
        return "train"
    return "valid" if part == "F" else "test"


def set_names() -> List[str]:
    return [ALL_SET] + [f"fold{k}_{s}" for k in range(1, iemocap.NUM_SESSIONS + 1)
                        for s in SETS_PER_FOLD]


def _personality_fields(utts, ocean: Ocean) -> Dict[str, Dict[str, str]]:
    fields = iemocap.utterance_fields(utts)
    fields["utt2personality"], fields["utt2dialog"], fields["utt2gender"] = {}, {}, {}
    for u in utts:
        utt = iemocap.kaldi_utt_id(u.corpus_id)
        dialogue, gender = dialogue_of(u.corpus_id), gender_of(u.corpus_id)
        key = dialogue_key(dialogue)
        speaker, listener = ocean[key, gender], ocean[key, other_gender(gender)]
        fields["utt2personality"][utt] = " ".join(speaker + listener)
        fields["utt2dialog"][utt] = dialogue
        fields["utt2gender"][utt] = gender
    return fields


def prepare_pa_iemocap(iemocap_root: PathLike, pa_root: PathLike, out_dir: PathLike,
                       check_audio: bool = False) -> Dict:
    """Write ``out_dir/pa_iemocap_all`` and ``fold{k}_{train,valid,test}`` (k = 1..5), all or
    nothing: the lexical IEMOCAP 4-class utterances with utt2personality (speaker O C E A N,
    listener O C E A N), utt2dialog and utt2gender. Returns the counts."""
    root = iemocap.check_root(iemocap_root)
    pa_root = check_pa_root(pa_root)
    out_dir = check_out_dir(out_dir, PaIemocapError)
    ocean = read_ocean(pa_root / OCEAN_FILE)
    logging.info("%s: %d dialogues x 2 speakers", ocean.path, len(ocean.spelling))
    counts: Dict = {"ocean_dialogues": len(ocean.spelling)}
    tipi = pa_root / TIPI_FILE
    if tipi.is_file():
        worst = check_tipi(ocean, tipi)
        logging.info("%s agrees with %s (largest difference %.4f <= %g)", ocean.path, tipi,
                     worst, TIPI_TOLERANCE)
        counts["tipi_max_diff"] = worst
    else:
        logging.info("no %s in %s: ocean.csv not checked against the TIPI ratings", TIPI_FILE,
                     pa_root)
        counts["tipi_max_diff"] = None
    logging.info("reading %s (emotions %s, exc merged into hap)", root, " ".join(EMOTIONS))
    utts, ie_counts = iemocap.collect_utterances(root, EMOTIONS, True, check_audio)
    warning = iemocap.check_four_class_total(len(utts), EMOTIONS, True)
    if warning:
        logging.warning(warning)
    kept = [u for u in utts if u.text]
    counts.update(consensus_lines=ie_counts["consensus_lines"], four_class=len(utts),
                  non_lexical_dropped=len(utts) - len(kept), num_utts=len(kept))
    logging.info("%d consensus lines -> %d in the 4 classes (exc merged into hap: %d) -> %d "
                 "after dropping %d with no words in the transcript (the paper: 10,039 -> "
                 "9,980 -> %d)", ie_counts["consensus_lines"], len(utts),
                 ie_counts["merged_exc_into_hap"], len(kept), len(utts) - len(kept), PAPER_TOTAL)
    if not kept:
        raise PaIemocapError(f"{root}: no utterance with words in the 4 classes")
    if len(kept) != PAPER_TOTAL:
        logging.warning("%d utterances kept, not the %d of the paper", len(kept), PAPER_TOTAL)
    missing = Counter(dialogue_of(u.corpus_id) for u in kept
                      if (dialogue_key(dialogue_of(u.corpus_id)), gender_of(u.corpus_id))
                      not in ocean)
    if missing:
        raise PaIemocapError(
            f"{ocean.path}: no row for {len(missing)} dialogue(s) of kept utterances: "
            + ", ".join(f"{d} ({n} utterance{'s' if n > 1 else ''})"
                        for d, n in sorted(missing.items()))
            + f" (a script dialogue's number is matched without zero padding: "
              f"{dialogue_key('Ses01M_script01_1')} = Ses01M_script01_1)")
    used = {dialogue_key(dialogue_of(u.corpus_id)) for u in kept}
    counts["dialogues"] = len(used)
    unused = sorted(ocean.spelling[k] for k in set(ocean.spelling) - used)
    if unused:
        logging.info("%d dialogue(s) of %s have no kept utterance: %s", len(unused), ocean.path,
                     " ".join(unused))
    parts = Counter(dialogue_of(u.corpus_id)[:6] for u in kept)
    counts["per_part"] = dict(sorted(parts.items()))
    logging.info("utterances per part: %s", ", ".join(f"{p} {n}" for p, n in sorted(parts.items())))
    plan = {ALL_SET: kept}
    for k in range(1, iemocap.NUM_SESSIONS + 1):
        for s in SETS_PER_FOLD:
            plan[f"fold{k}_{s}"] = [u for u in kept if fold_part(k, dialogue_of(u.corpus_id)) == s]
    sets = {name: _personality_fields(plan[name], ocean) for name in set_names()}
    counts["sets"] = write_sets(out_dir, sets, sorted(EMOTIONS), "pa_iemocap")
    return counts
