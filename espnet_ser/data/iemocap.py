"""IEMOCAP (``IEMOCAP_full_release/``) to Kaldi data directories.

Reads, for ``Session1`` .. ``Session5``:

* ``dialog/EmoEvaluation/<dialog>.txt``: consensus lines
  ``[start - end]<TAB><utt><TAB><label><TAB>[V, A, D]``. Only lines starting with ``[``
  are read; the header (``%``), evaluator lines and blank lines are skipped. The
  subfolders (``Categorical/``, ``Attribute/``, ``Self-evaluation/``) hold per-evaluator
  files and are never read.
* ``dialog/transcriptions/<dialog>.txt``: ``<utt> [start-end]: text``; other lines
  (``M: [BREATHING]``, lines without a time stamp) are skipped.
* ``sentences/wav/<dialog>/<utt>.wav``: only checked to exist (headers read with
  ``check_audio``).

Files and folders whose names start with ``.`` (macOS ``._*`` AppleDouble files,
``.DS_Store``) are ignored everywhere.

Utterance ids are ``<speaker>-<corpus id>``, e.g. ``Ses01M-Ses01F_impro01_M013``: the
speaker is the session plus the gender letter starting the last part of the corpus id,
and the prefix keeps utt2spk sorted by speaker as Kaldi requires. ``utt2dim`` holds the
consensus values in the toolkit's order ``arousal valence dominance`` (the corpus lists
them as valence, activation = arousal, dominance).

Output sets (``protocols``, both by default; ``iemocap_all`` is always written):

* ``iemocap_all``: every kept utterance.
* ``session`` protocol: ``fold{k}_{train,valid,test}`` for k = 1..5 (test = Session k,
  valid = Session k mod 5 + 1, train = the other three sessions).
* ``loso`` protocol (leave one speaker out, 10 folds, as in the multi-task SER papers):
  fold k tests on speaker k, the k-th of ``Ses01F Ses01M Ses02F Ses02M ... Ses05F
  Ses05M`` (SPEAKERS): test = every kept utterance of speaker k. Three ways of
  validating (``loso_valid``, all three written by default), each with its own set
  names (LOSO_SET_PREFIX) so that they never overwrite each other:

  - ``none``, ``losonv{k}_{train,test}``: the multi-task paper's protocol. train = all
    nine other speakers; there is no validation set and no epoch is chosen on held-out
    data: the recipe scores the model of the last epoch (and gives ESPnet's trainer the
    test speaker as its validation set only to draw the training curves).
  - ``partner``, ``loso{k}_{train,valid,test}``: valid = the other speaker of the same
    session (Ses01F <-> Ses01M), train = the remaining 8 speakers. This follows the session protocol, whose
    validation set is also held out at the speaker (there: session) level: valid and
    test are both speaker-disjoint from train, and since the partner shares the test
    speaker's dialogs, train is even session-disjoint from valid and test (the same
    conversation never lands on both sides). Choosing e.g. the "next" speaker instead
    would put the partner of the validation speaker, i.e. the other half of its
    dialogs, into train.
  - ``random``, ``losorv{k}_{train,valid,test}``: valid = a seeded, emotion-stratified
    ``loso_valid_fraction`` (10 %) of the utterances of the other nine speakers (the
    toolkit's scikit-learn split, :mod:`espnet_ser.data.split`); train = the rest of
    those nine speakers. Valid then shares speakers (and dialogs) with train, so early
    stopping on it is optimistic; use it only to match papers that did this.

  Labels and the exc -> hap merge are those of every other set (the sets are cut from
  the same utterance list). Every speaker must keep at least one utterance, else
  IemocapError names the missing speaker(s).

Utterances whose transcript has no words once the non-lexical tags are removed (e.g.
``[LAUGHTER]`` alone) are valid emotion samples. ``iemocap_all`` and the ``loso`` sets
(utterance-level SER) keep them with an empty ``text`` line, listed in ``utt2empty_text``
with their corpus transcript (the data directory's declaration that this empty transcript
is intended, see :mod:`espnet_ser.data.datadir`); a recipe with a CTC head leaves them out
of its training (``espnet_ser.data.filter``: no target tokens). The ``session`` sets (joint
ASR + SER, where the transcript is the target) leave them out.

With the default emotions (``ang hap neu sad``, exc merged into hap) the number of kept
utterances is checked against FOUR_CLASS_TOTAL, the 5,531 of the full release: a
warning names the difference.
"""

import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from espnet_ser.data.datadir import (
    EMPTY_TEXT_FILE,
    DataDirError,
    PathLike,
    emotion_token,
    install_sets,
    write_data_dir,
)
from espnet_ser.data.split import SplitError
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
    rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]\s*$"
)
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


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _lines(path: Path) -> List[bytes]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IemocapError(f"{path}: cannot read ({e.strerror or e})") from e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [line.rstrip(b"\r") for line in data.split(b"\n")]


def read_consensus(path: PathLike) -> List[ConsensusLine]:
    """Parse the consensus lines (those starting with ``[``) of an EmoEvaluation file.

    Raises IemocapError naming file and line for a line that does not parse or a
    label outside KNOWN_LABELS.
    """
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
            raise IemocapError(
                f"{path}:{lineno}: cannot parse consensus line {line.strip()!r} (expected "
                "'[START - END]<TAB>UTT<TAB>LABEL<TAB>[V, A, D]')"
            )
        utt, label = m.group(3), m.group(4)
        if label not in KNOWN_LABELS:
            raise IemocapError(
                f"{path}:{lineno}: utterance {utt} has unknown label {label!r} "
                f"(known: {' '.join(KNOWN_LABELS)})"
            )
        vad = tuple(float(m.group(i)) for i in (5, 6, 7))
        if not all(math.isfinite(x) for x in vad):
            raise IemocapError(f"{path}:{lineno}: utterance {utt} has non-finite V/A/D {vad}")
        out.append(ConsensusLine(utt, label, vad, lineno))
    return out


def read_transcripts(path: PathLike, keep: Optional[set] = None) -> Dict[str, str]:
    """Return ``{utt: raw text}`` from the ``<utt> [start-end]: text`` lines of a file.

    Other lines are skipped. Two different texts for one id raise IemocapError when
    the id is in ``keep`` (every id when ``keep`` is None); otherwise the first wins.
    """
    path = Path(path)
    out: Dict[str, str] = {}
    first_line: Dict[str, int] = {}
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
        if utt in out:
            if out[utt] != text and (keep is None or utt in keep):
                raise IemocapError(
                    f"{path}:{lineno}: second transcript for {utt} differs from the one "
                    f"on line {first_line[utt]}"
                )
            continue
        out[utt] = text
        first_line[utt] = lineno
    return out


def normalize_transcript(text: str) -> str:
    """Word-level text: tags removed, lower case, no punctuation.

    Removes ``[...]``, ``<...>`` and ``{...}`` tags; lower-cases; turns every character
    that is not a letter, digit or apostrophe into a space (so ``well-known`` ->
    ``well known``, ``U.S.`` -> ``u s``, ``50%`` -> ``50``); keeps an apostrophe only
    between two letters/digits (``don't``; ``'hello'`` -> ``hello``, ``goin'`` ->
    ``goin``); collapses spaces. A stray unmatched bracket is dropped as punctuation.
    """
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
        raise IemocapError(
            f"{utt_id!r} is not an IEMOCAP utterance id like Ses01F_impro01_M013"
        )
    return m.group(1) + m.group(2)


def kaldi_utt_id(utt_id: str) -> str:
    """``Ses01F_impro01_M013`` -> ``Ses01M-Ses01F_impro01_M013``."""
    return f"{speaker_of(utt_id)}-{utt_id}"


def check_root(root: PathLike) -> Path:
    """Return the absolute corpus root, or raise naming ``--iemocap_root``."""
    root = Path(os.path.abspath(os.path.expanduser(str(root))))
    if not root.is_dir():
        raise IemocapError(f"--iemocap_root {root}: no such directory")
    if not (root / "Session1").is_dir() and (root / CORPUS_DIR_NAME / "Session1").is_dir():
        raise IemocapError(
            f"--iemocap_root {root} has no Session1 but contains {CORPUS_DIR_NAME}; "
            f"did you mean --iemocap_root {root / CORPUS_DIR_NAME}?"
        )
    return root


def _check_dir(path: Path) -> Path:
    if not path.is_dir():
        raise IemocapError(f"{path}: no such directory (is this an {CORPUS_DIR_NAME} tree?)")
    return path


def check_emotions(emotions: Sequence[str], merge_exc: bool) -> List[str]:
    emotions = list(emotions)
    if not emotions:
        raise IemocapError("--emotions is empty")
    for e in emotions:
        if e not in KNOWN_LABELS:
            raise IemocapError(f"--emotions: unknown label {e!r} (known: {' '.join(KNOWN_LABELS)})")
        emotion_token(e)
    if len(set(emotions)) != len(emotions):
        raise IemocapError(f"--emotions lists a label twice: {' '.join(emotions)}")
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


def _check_audio(wav: Path) -> None:
    import soundfile

    try:
        info = soundfile.info(str(wav))
    except Exception as e:
        raise IemocapError(f"{wav}: cannot read audio header ({e})") from e
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise IemocapError(
            f"{wav}: {info.samplerate} Hz, {info.channels} channel(s); expected "
            f"{SAMPLE_RATE} Hz mono"
        )


def collect_utterances(root: Path, emotions: Sequence[str], merge_exc: bool = True,
                       check_audio: bool = False) -> Tuple[List[_Utt], Dict]:
    """Read all sessions; return the kept utterances and the counts."""
    keep_labels = set(emotions)
    kept: List[_Utt] = []
    seen: Dict[str, str] = {}
    counts = {
        "consensus_lines": 0,
        "kept_per_session": {},
        "kept_per_label": Counter(),
        "dropped_per_label": Counter(),
        "merged_exc_into_hap": 0,
        "empty_text": 0,
    }
    empty_ids: List[str] = []
    for n in range(1, NUM_SESSIONS + 1):
        sess = _check_dir(root / f"Session{n}")
        emo_dir = _check_dir(sess / "dialog" / "EmoEvaluation")
        trn_dir = _check_dir(sess / "dialog" / "transcriptions")
        wav_root = _check_dir(sess / "sentences" / "wav")
        files = sorted(p for p in emo_dir.iterdir()
                       if _visible(p) and p.suffix == ".txt" and p.is_file())
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
                label = c.label
                if merge_exc and label == "exc":
                    label = "hap"
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
                    raise IemocapError(
                        f"{trn_file}: no '<utt> [start-end]: text' line for {c.utt} "
                        f"(labelled at {emo_file}:{c.lineno})"
                    )
                text = normalize_transcript(texts[c.utt])
                if not text:
                    counts["empty_text"] += 1
                    empty_ids.append(c.utt)
                wav = wav_root / dialog / f"{c.utt}.wav"
                if not wav.is_file():
                    raise IemocapError(f"{wav}: no such file (utterance {c.utt} labelled at "
                                       f"{emo_file}:{c.lineno})")
                if check_audio:
                    _check_audio(wav)
                kept.append(_Utt(n, c.utt, label, c.vad, text, wav, texts[c.utt]))
                per_label[label] += 1
        counts["kept_per_session"][sess.name] = {e: per_label[e] for e in sorted(keep_labels)}
        counts["kept_per_label"].update(per_label)
        logging.info("%s: kept %d (%s)", sess.name, sum(per_label.values()),
                     ", ".join(f"{e} {per_label[e]}" for e in sorted(keep_labels)))
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
    """Speakers of LOSO fold k (1..10) with the ``partner`` validation set.

    test = SPEAKERS[k - 1], valid = its session partner, train = the other 8 speakers.
    """
    if not 1 <= k <= NUM_LOSO_FOLDS:
        raise IemocapError(f"LOSO fold {k}: expected 1..{NUM_LOSO_FOLDS}")
    test = SPEAKERS[k - 1]
    valid = partner_of(test)
    return {"train": [s for s in SPEAKERS if s not in (test, valid)], "valid": [valid],
            "test": [test]}


def check_protocols(protocols: Sequence[str]) -> List[str]:
    """Known, non-empty, no repeats; returned in PROTOCOLS order."""
    protocols = list(protocols)
    if not protocols:
        raise IemocapError(f"--protocols is empty (choose from {','.join(PROTOCOLS)})")
    for p in protocols:
        if p not in PROTOCOLS:
            raise IemocapError(
                f"--protocols: unknown protocol {p!r} (known: {','.join(PROTOCOLS)})")
    if len(set(protocols)) != len(protocols):
        raise IemocapError(f"--protocols lists a protocol twice: {','.join(protocols)}")
    return [p for p in PROTOCOLS if p in protocols]


def check_loso_valid(modes) -> List[str]:
    """``--loso_valid``: one mode or a sequence of them; returned in LOSO_VALID_MODES order."""
    modes = [modes] if isinstance(modes, str) else list(modes)
    if not modes:
        raise IemocapError(f"--loso_valid is empty (choose from {','.join(LOSO_VALID_MODES)})")
    for m in modes:
        if m not in LOSO_VALID_MODES:
            raise IemocapError(f"--loso_valid: unknown mode {m!r} "
                               f"(known: {' '.join(LOSO_VALID_MODES)})")
    if len(set(modes)) != len(modes):
        raise IemocapError(f"--loso_valid lists a mode twice: {','.join(modes)}")
    return [m for m in LOSO_VALID_MODES if m in modes]


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
    """Split ``utts`` into (rest, held out), ``fraction`` held out, stratified by emotion.

    The toolkit's stratified split (:func:`espnet_ser.data.split.stratified_split`,
    scikit-learn's ``train_test_split(..., stratify=emotions, random_state=seed)``)
    over the utterances sorted by Kaldi id; both lists are in that order. It holds out
    ``ceil(fraction * n)`` utterances, as scikit-learn counts a fraction, but at least one
    per emotion (so that no emotion is missing from a small validation set). An emotion
    with fewer than 2 utterances raises IemocapError naming it and its count.
    """
    ordered = sorted(utts, key=lambda u: kaldi_utt_id(u.corpus_id))
    labels = [u.label for u in ordered]
    n_held = max(math.ceil(fraction * len(ordered)), len(set(labels)))
    try:
        return _stratified_split(ordered, labels, n_held, seed,
                                 what="leave-one-speaker-out random validation set")
    except SplitError as e:
        raise IemocapError(str(e)) from e


def loso_plan(utts: Sequence[_Utt], valid_mode: str = "partner",
              valid_fraction: float = DEFAULT_LOSO_VALID_FRACTION,
              seed: int = DEFAULT_LOSO_SEED) -> Dict[str, List[_Utt]]:
    """``{set name: utterances}`` of LOSO validation mode ``valid_mode``, k = 1..10.

    test = every utterance of SPEAKERS[k - 1]. ``none`` (``losonv{k}_{train,test}``):
    train = the nine other speakers, no validation set. ``partner``
    (``loso{k}_{train,valid,test}``): valid = every utterance of the session partner,
    train = the other 8 speakers (speaker- and session-disjoint from valid and test).
    ``random`` (``losorv{k}_*``): valid = an emotion-stratified ``valid_fraction`` of the
    other nine speakers' utterances (see stratified_split; seeded by ``seed``), train =
    the rest of them. Raises IemocapError naming every speaker with no utterance.
    """
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
            "check the tree and --emotions, or pass --protocols session"
        )
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
            train, valid = stratified_split(others, valid_fraction, seed)
            plan[f"{name}_train"], plan[f"{name}_valid"] = train, valid
    return plan


def _fields(utts: Sequence[_Utt]) -> Dict[str, Dict[str, str]]:
    f = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dim")}
    for u in utts:
        utt = kaldi_utt_id(u.corpus_id)
        f["wav.scp"][utt] = str(u.wav)
        f["text"][utt] = u.text
        f["utt2spk"][utt] = speaker_of(u.corpus_id)
        f["utt2emo"][utt] = u.label
        v, a, d = u.vad
        f["utt2dim"][utt] = f"{a:.4f} {v:.4f} {d:.4f}"  # arousal valence dominance
    empty = {kaldi_utt_id(u.corpus_id): " ".join(u.raw_text.split()) or "-"
             for u in utts if not u.text}
    if empty:
        f[EMPTY_TEXT_FILE] = empty
    return f


def check_four_class_total(num_utts: int, emotions: Sequence[str], merge_exc: bool) -> Optional[str]:
    """The warning to give when the default 4-class set does not hold FOUR_CLASS_TOTAL.

    None for other label sets, or when the count matches.
    """
    if sorted(emotions) != sorted(DEFAULT_EMOTIONS) or not merge_exc:
        return None
    if num_utts == FOUR_CLASS_TOTAL:
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
    """Write ``out_dir/iemocap_all`` and the sets of ``protocols`` (default both).

    ``session``: ``fold{1..5}_{train,valid,test}`` (utterances with no words in the
    transcript left out). ``loso``: the sets of every LOSO validation mode in
    ``loso_valid`` (default all three: ``losonv{k}_*`` for ``none``, ``loso{k}_*`` for
    ``partner``, ``losorv{k}_*`` for ``random`` drawn with ``loso_valid_fraction`` and
    ``loso_seed``); see loso_plan and the module docstring.

    Logs how many utterances each protocol keeps, and warns when the default 4-class
    set does not hold the full release's 5,531 (check_four_class_total).

    Every set is written and validated in a temporary directory next to ``out_dir`` and
    moved into place only when all succeeded; sets of the same name are replaced,
    anything else in ``out_dir`` (including sets of a protocol not asked for this time)
    is left alone. Returns the counts.
    """
    emotions = check_emotions(emotions, merge_exc)
    protocols = check_protocols(protocols)
    loso_valid = check_loso_valid(loso_valid)
    if not (0.0 < loso_valid_fraction < 1.0):
        raise IemocapError(f"--loso_valid_fraction {loso_valid_fraction}: expected 0 < f < 1")
    root = check_root(root)
    out_dir = Path(os.path.abspath(os.path.expanduser(str(out_dir))))
    if out_dir.exists() and not out_dir.is_dir():
        raise IemocapError(f"--out_dir {out_dir}: exists and is not a directory")
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
    by_session = {n: [u for u in with_words if u.session == n]
                  for n in range(1, NUM_SESSIONS + 1)}
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
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.iemocap.", dir=str(out_dir.parent)))
    created_out = False
    try:
        counts["sets"] = {}
        for name in names:
            write_data_dir(staging / name, _fields(plan[name]), emotions=emotions)
            per = Counter(u.label for u in plan[name])
            counts["sets"][name] = {
                "num_utts": len(plan[name]),
                "num_speakers": len({speaker_of(u.corpus_id) for u in plan[name]}),
                "per_emotion": {e: per[e] for e in sorted(emotions)},
            }
        if not out_dir.exists():
            out_dir.mkdir()
            created_out = True
        install_sets(staging, out_dir, names)
    except BaseException:
        if created_out:
            try:
                out_dir.rmdir()
            except OSError:
                pass
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    for name in names:
        c = counts["sets"][name]
        logging.info("%s: %d utterances, %d speakers (%s)", out_dir / name, c["num_utts"],
                     c["num_speakers"], ", ".join(f"{e} {n}" for e, n in c["per_emotion"].items()))
    counts["num_utts"] = len(utts)
    return counts
