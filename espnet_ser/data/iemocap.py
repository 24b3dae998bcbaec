"""IEMOCAP (``IEMOCAP_full_release/``) to Kaldi data directories: ``iemocap_all``, session folds
``fold{k}_*``, speaker folds (LOSO_SET_PREFIX); layout, ids, protocols: egs/iemocap/README.md."""

import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from espnet_ser.data.datadir import EMPTY_TEXT_FILE, DataDirError, PathLike
from espnet_ser.data.prepare import (
    check_out_dir, check_root as _check_root, check_wav_header, visible_entries, write_sets)
from espnet_ser.data.split import stratified_split as _stratified_split

CORPUS_DIR_NAME = "IEMOCAP_full_release"
NUM_SESSIONS = 5
SAMPLE_RATE = 16000
# Consensus labels as written in EmoEvaluation/<dialog>.txt.
KNOWN_LABELS = ("neu", "hap", "exc", "sad", "ang", "fru", "fea", "sur", "dis", "oth", "xxx")
DEFAULT_EMOTIONS = ("ang", "hap", "neu", "sad")
SET_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2emo", "utt2dim")
# The 4-class set of the full release (neu hap+exc sad ang).
FOUR_CLASS_TOTAL = 5531
# Leave-one-speaker-out fold k tests SPEAKERS[k - 1].
SPEAKERS = tuple(f"Ses{n:02d}{g}" for n in range(1, NUM_SESSIONS + 1) for g in "FM")
NUM_LOSO_FOLDS = len(SPEAKERS)
PROTOCOLS = ("session", "loso")
LOSO_VALID_MODES = ("partner", "random", "none")
# Set names of each LOSO validation mode: {prefix}{k}_train, ..._valid, ..._test.
LOSO_SET_PREFIX = {"partner": "loso", "random": "losorv", "none": "losonv"}
DEFAULT_LOSO_VALID_FRACTION = 0.1
DEFAULT_LOSO_SEED = 0

_NUM = r"[-+]?\d+(?:\.\d*)?"
_CONSENSUS_RE = re.compile(
    rf"^\[\s*({_NUM})\s*-\s*({_NUM})\s*\]\s+(\S+)\s+(\S+)\s+"
    rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]\s*$")
_TRANSCRIPT_RE = re.compile(rf"^(\S+)\s*\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s*:(.*)$")
_SPEAKER_RE = re.compile(r"^(Ses\d\d)[FM]_.+_([FM])[^_]*$")
# Non-lexical tags: [LAUGHTER], [BREATHING], [GARBAGE], <sigh>, {noise}.
_TAG_RE = re.compile(r"\[[^\[\]]*\]|<[^<>]*>|\{[^{}]*\}")
_NON_WORD_RE = re.compile(r"[^\w']+|_")
_EDGE_APOSTROPHE_RE = re.compile(r"(?<!\w)'|'(?!\w)")


class IemocapError(DataDirError):
    """The IEMOCAP tree is missing something or holds a line that does not parse."""


class ConsensusLine(NamedTuple):
    utt: str
    label: str
    vad: Tuple[float, float, float]  # valence, activation, dominance
    lineno: int


def _lines(path: Path) -> List[bytes]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IemocapError(f"{path}: cannot read ({e.strerror or e})") from e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [line.rstrip(b"\r") for line in data.split(b"\n")]


def read_consensus(path: PathLike) -> List[ConsensusLine]:
    """The consensus lines (those starting with ``[``) of an EmoEvaluation file."""
    path = Path(path)
    out = []
    for lineno, raw in enumerate(_lines(path), 1):
        if not raw.startswith(b"["):
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IemocapError(f"{path}:{lineno}: consensus line is not UTF-8 text") from None
        m = _CONSENSUS_RE.match(line)
        if not m:
            raise IemocapError(f"{path}:{lineno}: cannot parse consensus line {line.strip()!r} "
                               "(expected '[START - END]<TAB>UTT<TAB>LABEL<TAB>[V, A, D]')")
        utt, label = m.group(3), m.group(4)
        if label not in KNOWN_LABELS:
            raise IemocapError(f"{path}:{lineno}: utterance {utt} has unknown label {label!r} "
                               f"(known: {' '.join(KNOWN_LABELS)})")
        vad = tuple(float(m.group(i)) for i in (5, 6, 7))
        if not all(math.isfinite(x) for x in vad):
            raise IemocapError(f"{path}:{lineno}: utterance {utt} has non-finite V/A/D {vad}")
        out.append(ConsensusLine(utt, label, vad, lineno))
    return out


def read_transcripts(path: PathLike, keep: Optional[set] = None) -> Dict[str, str]:
    """``{utt: raw text}`` of the ``<utt> [start-end]: text`` lines; two different texts for
    an id in ``keep`` (default all) are an error, otherwise the first wins."""
    path = Path(path)
    out: Dict[str, Tuple[int, str]] = {}  # utt -> (first line, text)
    for lineno, raw in enumerate(_lines(path), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="replace")
            logging.warning("%s:%d: not UTF-8; read as cp1252", path, lineno)
        m = _TRANSCRIPT_RE.match(line.strip())
        if not m:
            continue
        utt, text = m.group(1), m.group(2).strip()
        if utt not in out:
            out[utt] = (lineno, text)
        elif out[utt][1] != text and (keep is None or utt in keep):
            raise IemocapError(f"{path}:{lineno}: second transcript for {utt} differs from the "
                               f"one on line {out[utt][0]}")
    return {utt: text for utt, (_, text) in out.items()}


def normalize_transcript(text: str) -> str:
    """Lower-case words: tags (``[LAUGHTER]``, ``<sigh>``, ``{noise}``) removed, other
    characters but apostrophes inside a word (``don't``) made spaces."""
    t = _TAG_RE.sub(" ", text)
    t = t.replace("\u2019", "'").replace("\u2018", "'").lower()
    t = _NON_WORD_RE.sub(" ", t)
    t = re.sub(r"'+", "'", t)
    t = _EDGE_APOSTROPHE_RE.sub(" ", t)
    return " ".join(t.split())


def speaker_of(utt_id: str) -> str:
    """``Ses01F_impro01_M013`` -> ``Ses01M`` (session + gender letter of the last part)."""
    m = _SPEAKER_RE.match(utt_id)
    if not m:
        raise IemocapError(f"{utt_id!r} is not an IEMOCAP utterance id like Ses01F_impro01_M013")
    return m.group(1) + m.group(2)


def kaldi_utt_id(utt_id: str) -> str:
    """``Ses01F_impro01_M013`` -> ``Ses01M-Ses01F_impro01_M013``."""
    return f"{speaker_of(utt_id)}-{utt_id}"


def check_root(root: PathLike) -> Path:
    """Return the absolute corpus root, or raise naming ``--iemocap_root``."""
    return _check_root(root, "iemocap_root", IemocapError, CORPUS_DIR_NAME, "Session1",
                       lambda p: (p / "Session1").is_dir())


def _check_dir(path: Path) -> Path:
    if not path.is_dir():
        raise IemocapError(f"{path}: no such directory (is this an {CORPUS_DIR_NAME} tree?)")
    return path


def check_emotions(emotions: Sequence[str], merge_exc: bool) -> List[str]:
    emotions = list(emotions)
    _check_choices(emotions, KNOWN_LABELS, "--emotions", "label")  # all valid emotion codes
    if merge_exc and "exc" in emotions:
        raise IemocapError("--emotions contains exc but --merge_exc_into_hap is true")
    return emotions


class _Utt(NamedTuple):
    session: int
    corpus_id: str
    label: str  # after merging
    vad: Tuple[float, float, float]
    text: str  # "" when the transcript has no words (e.g. "[LAUGHTER]")
    wav: Path
    raw_text: str = ""  # the corpus transcript


def collect_utterances(root: Path, emotions: Sequence[str], merge_exc: bool = True,
                       check_audio: bool = False) -> Tuple[List[_Utt], Dict]:
    """Read all sessions; return the kept utterances and the counts."""
    keep_labels = set(emotions)
    kept: List[_Utt] = []
    seen: Dict[str, str] = {}
    counts = {"consensus_lines": 0, "kept_per_session": {}, "kept_per_label": Counter(),
              "dropped_per_label": Counter(), "merged_exc_into_hap": 0}
    for n in range(1, NUM_SESSIONS + 1):
        sess = _check_dir(root / f"Session{n}")
        emo_dir = _check_dir(sess / "dialog" / "EmoEvaluation")
        trn_dir = _check_dir(sess / "dialog" / "transcriptions")
        wav_root = _check_dir(sess / "sentences" / "wav")
        files = [p for p in visible_entries(emo_dir) if p.suffix == ".txt" and p.is_file()]
        if not files:
            raise IemocapError(f"{emo_dir}: no consensus files <dialog>.txt")
        prefix = f"Ses{n:02d}"
        per_label = Counter()
        for emo_file in files:
            dialog = emo_file.stem
            if not dialog.startswith(prefix):
                raise IemocapError(f"{emo_file}: a {sess.name} dialog should start with {prefix}")
            entries = []
            for c in read_consensus(emo_file):
                where = f"{emo_file}:{c.lineno}"
                if not c.utt.startswith(dialog + "_"):
                    raise IemocapError(f"{where}: utterance {c.utt} is not of dialog {dialog}")
                try:
                    speaker_of(c.utt)
                except IemocapError as e:
                    raise IemocapError(f"{where}: {e}") from None
                if c.utt in seen:
                    raise IemocapError(f"{where}: utterance {c.utt} was already labelled at "
                                       f"{seen[c.utt]}")
                seen[c.utt] = where
                counts["consensus_lines"] += 1
                label = "hap" if merge_exc and c.label == "exc" else c.label
                if label not in keep_labels:
                    counts["dropped_per_label"][c.label] += 1
                    continue
                if label != c.label:
                    counts["merged_exc_into_hap"] += 1
                entries.append((c, label))
            if not entries:
                continue
            trn_file = trn_dir / f"{dialog}.txt"
            if not trn_file.is_file():
                raise IemocapError(f"{trn_file}: no such file (transcripts of {emo_file.name})")
            texts = read_transcripts(trn_file, keep={c.utt for c, _ in entries})
            for c, label in entries:
                if c.utt not in texts:
                    raise IemocapError(f"{trn_file}: no '<utt> [start-end]: text' line for "
                                       f"{c.utt} (labelled at {emo_file}:{c.lineno})")
                wav = wav_root / dialog / f"{c.utt}.wav"
                if not wav.is_file():
                    raise IemocapError(f"{wav}: no such file (utterance {c.utt} labelled at "
                                       f"{emo_file}:{c.lineno})")
                if check_audio:
                    check_wav_header(wav, SAMPLE_RATE, IemocapError)
                kept.append(_Utt(n, c.utt, label, c.vad, normalize_transcript(texts[c.utt]),
                                 wav, texts[c.utt]))
                per_label[label] += 1
        counts["kept_per_session"][sess.name] = {e: per_label[e] for e in sorted(keep_labels)}
        counts["kept_per_label"].update(per_label)
        logging.info("%s: kept %d (%s)", sess.name, sum(per_label.values()),
                     ", ".join(f"{e} {per_label[e]}" for e in sorted(keep_labels)))
    empty_ids = [u.corpus_id for u in kept if not u.text]
    counts["empty_text"] = len(empty_ids)
    if empty_ids:
        logging.debug("no words left in the transcript: %s", " ".join(empty_ids))
    counts["kept_per_label"] = {e: counts["kept_per_label"][e] for e in sorted(keep_labels)}
    counts["dropped_per_label"] = dict(sorted(counts["dropped_per_label"].items()))
    return kept, counts


def fold_sessions(k: int) -> Dict[str, List[int]]:
    """Sessions of fold k: test = k, valid = k mod 5 + 1, train = the rest."""
    valid = k % NUM_SESSIONS + 1
    train = [n for n in range(1, NUM_SESSIONS + 1) if n not in (k, valid)]
    return {"train": train, "valid": [valid], "test": [k]}


def partner_of(speaker: str) -> str:
    """``Ses01F`` -> ``Ses01M`` and back: the other speaker of the session."""
    if speaker not in SPEAKERS:
        raise IemocapError(f"{speaker!r} is not an IEMOCAP speaker ({' '.join(SPEAKERS)})")
    return speaker[:-1] + ("M" if speaker[-1] == "F" else "F")


def loso_speakers(k: int) -> Dict[str, List[str]]:
    """Speakers of LOSO fold k (1..10): test SPEAKERS[k - 1], valid its session partner."""
    if not 1 <= k <= NUM_LOSO_FOLDS:
        raise IemocapError(f"LOSO fold {k}: expected 1..{NUM_LOSO_FOLDS}")
    test = SPEAKERS[k - 1]
    valid = partner_of(test)
    return {"train": [s for s in SPEAKERS if s not in (test, valid)], "valid": [valid], "test": [test]}


def _check_choices(values, known: Sequence[str], option: str, what: str) -> List[str]:
    """Known, non-empty, no repeats; returned in the order of ``known``."""
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise IemocapError(f"{option} is empty (choose from {','.join(known)})")
    for v in values:
        if v not in known:
            raise IemocapError(f"{option}: unknown {what} {v!r} (known: {','.join(known)})")
    if len(set(values)) != len(values):
        raise IemocapError(f"{option} lists a {what} twice: {','.join(values)}")
    return [v for v in known if v in values]


def check_protocols(protocols: Sequence[str]) -> List[str]:
    return _check_choices(protocols, PROTOCOLS, "--protocols", "protocol")


def check_loso_valid(modes) -> List[str]:
    """``--loso_valid``: one mode or a sequence of them."""
    return _check_choices(modes, LOSO_VALID_MODES, "--loso_valid", "mode")


def loso_set_names(mode: str) -> List[str]:
    """Set names of LOSO validation ``mode``, fold by fold (``none`` has no valid set)."""
    prefix = LOSO_SET_PREFIX[check_loso_valid(mode)[0]]
    parts = ("train", "test") if mode == "none" else ("train", "valid", "test")
    return [f"{prefix}{k}_{s}" for k in range(1, NUM_LOSO_FOLDS + 1) for s in parts]


def set_names(protocols: Sequence[str] = PROTOCOLS,
              loso_valid: Sequence[str] = LOSO_VALID_MODES) -> List[str]:
    """Names of the sets written for ``protocols``, in the order they are installed."""
    names = ["iemocap_all"]
    if "session" in protocols:
        names += [f"fold{k}_{s}" for k in range(1, NUM_SESSIONS + 1)
                  for s in ("train", "valid", "test")]
    if "loso" in protocols:
        for mode in check_loso_valid(loso_valid):
            names += loso_set_names(mode)
    return names


def stratified_split(utts: Sequence[_Utt], fraction: float,
                     seed: int) -> Tuple[List[_Utt], List[_Utt]]:
    """(rest, held out) stratified by emotion, in Kaldi id order, holding out
    ``ceil(fraction * n)`` utterances but at least one per emotion."""
    ordered = sorted(utts, key=lambda u: kaldi_utt_id(u.corpus_id))
    labels = [u.label for u in ordered]
    n_held = max(math.ceil(fraction * len(ordered)), len(set(labels)))
    return _stratified_split(ordered, labels, n_held, seed, error=IemocapError,
                             what="leave-one-speaker-out random validation set")


def loso_plan(utts: Sequence[_Utt], valid_mode: str = "partner",
              valid_fraction: float = DEFAULT_LOSO_VALID_FRACTION,
              seed: int = DEFAULT_LOSO_SEED) -> Dict[str, List[_Utt]]:
    """``{set name: utterances}`` of LOSO validation mode ``valid_mode``, k = 1..10."""
    valid_mode = check_loso_valid(valid_mode)
    if len(valid_mode) != 1:
        raise IemocapError(f"loso_plan: one --loso_valid mode at a time, got {valid_mode}")
    valid_mode = valid_mode[0]
    if valid_mode == "random" and not (0.0 < valid_fraction < 1.0):
        raise IemocapError(f"--loso_valid_fraction {valid_fraction}: expected 0 < f < 1")
    by_speaker: Dict[str, List[_Utt]] = {s: [] for s in SPEAKERS}
    for u in utts:
        by_speaker[speaker_of(u.corpus_id)].append(u)
    missing = [s for s in SPEAKERS if not by_speaker[s]]
    if missing:
        raise IemocapError(
            f"leave-one-speaker-out: no kept utterance of speaker(s) {' '.join(missing)} "
            f"(LOSO fold(s) {' '.join(str(SPEAKERS.index(s) + 1) for s in missing)}); "
            "check the tree and --emotions, or pass --protocols session")
    prefix = LOSO_SET_PREFIX[valid_mode]
    plan: Dict[str, List[_Utt]] = {}
    for k in range(1, NUM_LOSO_FOLDS + 1):
        spk = loso_speakers(k)
        name = f"{prefix}{k}"
        plan[f"{name}_test"] = list(by_speaker[spk["test"][0]])
        others = [u for s in SPEAKERS if s != spk["test"][0] for u in by_speaker[s]]
        if valid_mode == "none":
            plan[f"{name}_train"] = others
        elif valid_mode == "partner":
            plan[f"{name}_train"] = [u for s in spk["train"] for u in by_speaker[s]]
            plan[f"{name}_valid"] = list(by_speaker[spk["valid"][0]])
        else:
            plan[f"{name}_train"], plan[f"{name}_valid"] = stratified_split(
                others, valid_fraction, seed)
    return plan


def utterance_fields(utts: Sequence[_Utt]) -> Dict[str, Dict[str, str]]:
    """``{file name: {Kaldi id: value}}`` of the SET_FILES but spk2utt (and utt2empty_text)."""
    f = {name: {} for name in SET_FILES if name != "spk2utt"}
    for u in utts:
        utt = kaldi_utt_id(u.corpus_id)
        f["wav.scp"][utt] = str(u.wav)
        f["text"][utt] = u.text
        f["utt2spk"][utt] = speaker_of(u.corpus_id)
        f["utt2emo"][utt] = u.label
        v, a, d = u.vad
        f["utt2dim"][utt] = f"{a:.4f} {v:.4f} {d:.4f}"  # arousal valence dominance
        if not u.text:
            f.setdefault(EMPTY_TEXT_FILE, {})[utt] = " ".join(u.raw_text.split()) or "-"
    return f


def check_four_class_total(num_utts: int, emotions: Sequence[str], merge_exc: bool) -> Optional[str]:
    """The warning when the default 4-class set does not hold FOUR_CLASS_TOTAL, else None."""
    if sorted(emotions) != sorted(DEFAULT_EMOTIONS) or not merge_exc or num_utts == FOUR_CLASS_TOTAL:
        return None
    diff = num_utts - FOUR_CLASS_TOTAL
    return (f"the 4-class set (ang hap+exc neu sad) holds {num_utts} utterances, "
            f"{abs(diff)} {'more' if diff > 0 else 'fewer'} than the {FOUR_CLASS_TOTAL} of the "
            f"full release ({diff:+d}): a partial or modified tree, or labels read differently")


def prepare_iemocap(root: PathLike, out_dir: PathLike,
                    emotions: Sequence[str] = DEFAULT_EMOTIONS, merge_exc: bool = True,
                    check_audio: bool = False, protocols: Sequence[str] = PROTOCOLS,
                    loso_valid: Sequence[str] = LOSO_VALID_MODES,
                    loso_valid_fraction: float = DEFAULT_LOSO_VALID_FRACTION,
                    loso_seed: int = DEFAULT_LOSO_SEED) -> Dict:
    """Write ``out_dir/iemocap_all`` and the sets of ``protocols`` and ``loso_valid``, all
    or nothing (prepare.write_sets); log what each protocol keeps; return the counts."""
    emotions = check_emotions(emotions, merge_exc)
    protocols = check_protocols(protocols)
    loso_valid = check_loso_valid(loso_valid)
    if not (0.0 < loso_valid_fraction < 1.0):
        raise IemocapError(f"--loso_valid_fraction {loso_valid_fraction}: expected 0 < f < 1")
    root = check_root(root)
    out_dir = check_out_dir(out_dir, IemocapError)
    logging.info("reading %s (emotions %s, exc merged into hap: %s)", root,
                 " ".join(emotions), merge_exc)
    utts, counts = collect_utterances(root, emotions, merge_exc, check_audio)
    if not utts:
        raise IemocapError(f"{root}: no utterance with a label in {' '.join(emotions)}")
    logging.info("kept %d utterances: %s", len(utts),
                 ", ".join(f"{e} {n}" for e, n in counts["kept_per_label"].items()))
    if merge_exc:
        logging.info("exc merged into hap: %d", counts["merged_exc_into_hap"])
    logging.info("dropped by label: %s", ", ".join(
        f"{e} {n}" for e, n in counts["dropped_per_label"].items()) or "none")
    logging.info("with no words in the transcript: %d (kept for utterance-level SER, "
                 "listed in %s)", counts["empty_text"], EMPTY_TEXT_FILE)
    warning = check_four_class_total(len(utts), emotions, merge_exc)
    if warning:
        logging.warning(warning)
    counts["four_class_check"] = warning or "ok"

    with_words = [u for u in utts if u.text]
    by_session = {n: [u for u in with_words if u.session == n] for n in range(1, NUM_SESSIONS + 1)}
    plan = {"iemocap_all": utts}
    counts["protocols"] = {}
    if "session" in protocols:
        for k in range(1, NUM_SESSIONS + 1):
            for s, sessions in fold_sessions(k).items():
                plan[f"fold{k}_{s}"] = [u for n in sessions for u in by_session[n]]
        counts["protocols"]["session"] = len(with_words)
        logging.info("session protocol (joint ASR + SER): %d utterances in the 5 test folds "
                     "(%d with no words in the transcript left out)", len(with_words),
                     len(utts) - len(with_words))
    if "loso" in protocols:
        for mode in loso_valid:
            plan.update(loso_plan(utts, mode, loso_valid_fraction, loso_seed))
            prefix = LOSO_SET_PREFIX[mode]
            tested = sum(len(plan[f"{prefix}{k}_test"]) for k in range(1, NUM_LOSO_FOLDS + 1))
            counts["protocols"][f"loso_{mode}"] = tested
            how = {"none": "train = the 9 other speakers, no validation set",
                   "partner": "valid = the session partner, train = the other 8 speakers",
                   "random": f"valid = {loso_valid_fraction:g} of the 9 other speakers' "
                             f"utterances per emotion (seed {loso_seed})"}[mode]
            logging.info("leave-one-speaker-out, --loso_valid %s (%s*_; %s): %d utterances in "
                         "the 10 test folds (%d with no words in the transcript)", mode, prefix,
                         how, tested, len(utts) - len(with_words))
    names = set_names(protocols, loso_valid)
    sets = {name: utterance_fields(plan[name]) for name in names}
    counts["sets"] = write_sets(out_dir, sets, sorted(emotions), "iemocap")
    counts["num_utts"] = len(utts)
    return counts
