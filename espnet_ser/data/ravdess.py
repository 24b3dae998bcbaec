"""RAVDESS speech (``Audio_Speech_Actors_01-24/Actor_XX/*.wav``) to the Kaldi data directories
SET_NAMES (all, seeded 80:20 emotion-stratified, by actor); see egs/ravdess/README.md."""

import logging
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence, Tuple

from espnet_ser.data.datadir import DataDirError, PathLike
from espnet_ser.data.prepare import (
    check_out_dir, check_root as _check_root, check_wav_header, visible_entries, write_sets)
from espnet_ser.data.split import check_split_args, stratified_split

CORPUS_DIR_NAME = "Audio_Speech_Actors_01-24"
SAMPLE_RATE = 48000
NUM_ACTORS = 24
EXPECTED_FILES = 1440
# Emotion code of the file name (01 .. 08) -> toolkit code.
EMOTIONS = ("neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur")
INTENSITIES = ("normal", "strong")
STATEMENTS = ("kids are talking by the door", "dogs are sitting by the door")
MODALITY_AUDIO_ONLY = 3
CHANNEL_SPEECH = 1
ACTOR_SETS = {"actor_train": range(1, 19), "actor_valid": range(19, 21), "actor_test": range(21, 25)}
SET_NAMES = ("ravdess_all", "random_train", "random_test") + tuple(ACTOR_SETS)
# With this seed scikit-learn's stratified allocation gives calm, fearful and surprised
# 39 test files each on the full corpus, as in the SSL comparison paper's reports.
DEFAULT_SEED = 101
DEFAULT_TEST_FRACTION = 0.2
_SPLIT = "RAVDESS random split"

_NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR_RE = re.compile(r"^Actor_(\d\d)$")
# field name, number of valid values (codes run 01 .. n)
_FIELDS = (("modality", 3), ("vocal channel", 2), ("emotion", 8), ("intensity", 2),
           ("statement", 2), ("repetition", 2), ("actor", NUM_ACTORS))


class RavdessError(DataDirError):
    """The RAVDESS tree is missing or holds a file whose name does not parse."""


class RavdessFile(NamedTuple):
    """The codes of one file name, decoded."""

    modality: int
    channel: int
    emotion: str  # toolkit code, e.g. "neu"
    intensity: str  # "normal" or "strong"
    statement: int  # 1 or 2
    repetition: int  # 1 or 2
    actor: int  # 1 .. 24

    @property
    def speaker(self) -> str:
        return f"actor{self.actor:02d}"

    @property
    def gender(self) -> str:
        return "m" if self.actor % 2 else "f"

    @property
    def text(self) -> str:
        return STATEMENTS[self.statement - 1]


class Utterance(NamedTuple):
    utt: str  # actorXX-<stem>
    wav: Path
    info: RavdessFile


def parse_name(name: str) -> RavdessFile:
    """Decode ``MM-VV-EE-II-SS-RR-AA[.wav]``; RavdessError (without the path) for a name out
    of pattern or range, a file that is not audio-only speech, or a strong neutral."""
    stem = name[:-4] if name.lower().endswith(".wav") else name
    m = _NAME_RE.match(stem)
    if not m:
        raise RavdessError(f"name {name!r} does not follow MM-VV-EE-II-SS-RR-AA.wav "
                           "(seven two-digit codes)")
    codes = [int(g) for g in m.groups()]
    for (field, n), code in zip(_FIELDS, codes):
        if not 1 <= code <= n:
            raise RavdessError(f"name {name!r}: {field} code {code:02d} is out of range "
                               f"(01 .. {n:02d})")
    modality, channel, emo, inten, statement, rep, actor = codes
    if modality != MODALITY_AUDIO_ONLY or channel != CHANNEL_SPEECH:
        raise RavdessError(
            f"name {name!r}: modality {modality:02d}, vocal channel {channel:02d}; only "
            f"audio-only speech ({MODALITY_AUDIO_ONLY:02d}-{CHANNEL_SPEECH:02d}) is expected")
    if emo == 1 and inten == 2:
        raise RavdessError(f"name {name!r}: neutral (01) has no strong intensity (02)")
    return RavdessFile(modality, channel, EMOTIONS[emo - 1], INTENSITIES[inten - 1],
                       statement, rep, actor)


def utt_id(stem: str, info: RavdessFile) -> str:
    """``03-01-05-02-01-01-07`` -> ``actor07-03-01-05-02-01-01-07``."""
    return f"{info.speaker}-{stem}"


def check_root(root: PathLike) -> Path:
    """Return the absolute corpus root, or raise naming ``--ravdess_root``."""
    return _check_root(root, "ravdess_root", RavdessError, CORPUS_DIR_NAME, "Actor_XX folder",
                       lambda r: any(_ACTOR_DIR_RE.match(p.name) and p.is_dir() for p in r.iterdir()))


def _is_wav(path: Path) -> bool:
    return path.suffix.lower() == ".wav"


def collect_utterances(root: Path, check_audio: bool = False) -> List[Utterance]:
    """The utterances of ``root/Actor_XX/*.wav`` sorted by id (names starting with ``.``
    ignored, other files skipped); RavdessError names a misnamed or misplaced ``.wav``."""
    utts: Dict[str, Utterance] = {}
    skipped = 0
    for entry in visible_entries(root):
        if not entry.is_dir():
            if _is_wav(entry):
                raise RavdessError(f"{entry}: not inside an Actor_XX folder")
            logging.info("skipping %s (not a .wav file)", entry)
            skipped += 1
            continue
        m = _ACTOR_DIR_RE.match(entry.name)
        files = visible_entries(entry)
        if not m or not 1 <= int(m.group(1)) <= NUM_ACTORS:
            wavs = [p for p in files if _is_wav(p) and not p.is_dir()]
            if wavs:
                raise RavdessError(f"{wavs[0]}: not inside an Actor_XX folder "
                                   f"(Actor_01 .. Actor_{NUM_ACTORS})")
            logging.info("skipping folder %s (not Actor_XX)", entry)
            continue
        folder_actor = int(m.group(1))
        for path in files:
            if path.is_dir():
                logging.warning("skipping folder %s (only Actor_XX/*.wav is read)", path)
                continue
            if not _is_wav(path):
                logging.info("skipping %s (not a .wav file)", path)
                skipped += 1
                continue
            try:
                info = parse_name(path.name)
            except RavdessError as e:
                raise RavdessError(f"{path}: {e}") from None
            if info.actor != folder_actor:
                raise RavdessError(f"{path}: actor code {info.actor:02d} disagrees with its "
                                   f"folder {entry.name}")
            uid = utt_id(path.name[:-4], info)
            if uid in utts:
                raise RavdessError(f"{path}: same utterance as {utts[uid].wav}")
            if check_audio:
                check_wav_header(path, SAMPLE_RATE, RavdessError, mono=False)
            utts[uid] = Utterance(uid, path, info)
    if not utts:
        raise RavdessError(f"--ravdess_root {root}: no .wav files (expected "
                           f"Actor_01 .. Actor_{NUM_ACTORS} folders of MM-VV-EE-II-SS-RR-AA.wav)")
    if skipped:
        logging.info("skipped %d files that are not .wav", skipped)
    if len(utts) != EXPECTED_FILES:
        logging.warning("found %d speech files; the full corpus has %d", len(utts), EXPECTED_FILES)
    return [utts[k] for k in sorted(utts)]


def random_split(utts: Sequence[Utterance], seed: int = DEFAULT_SEED,
                 test_fraction: float = DEFAULT_TEST_FRACTION
                 ) -> Tuple[List[Utterance], List[Utterance]]:
    """``(train, test)`` stratified by emotion, in id order (the full corpus: 1,152 / 288)."""
    ordered = sorted(utts, key=lambda u: u.utt)
    return stratified_split(ordered, [u.info.emotion for u in ordered],
                            _fraction(seed, test_fraction), seed, what=_SPLIT, error=RavdessError)


def _fraction(seed: int, test_fraction: float) -> float:
    """``test_fraction`` as a float, after checking both (RavdessError)."""
    if isinstance(test_fraction, int) and not isinstance(test_fraction, bool):
        test_fraction = float(test_fraction)  # a fraction, never a count
    check_split_args(test_fraction, seed, _SPLIT, "--test_fraction", "--seed", RavdessError)
    return test_fraction


def plan_sets(utts: Sequence[Utterance], seed: int = DEFAULT_SEED,
              test_fraction: float = DEFAULT_TEST_FRACTION) -> Dict[str, List[Utterance]]:
    """``{set name: utterances}`` for every name of SET_NAMES."""
    train, test = random_split(utts, seed, test_fraction)
    plan = {"ravdess_all": list(utts), "random_train": train, "random_test": test}
    for name, actors in ACTOR_SETS.items():
        plan[name] = [u for u in utts if u.info.actor in actors]
    return plan


def _fields(utts: Sequence[Utterance]) -> Dict[str, Dict[str, str]]:
    f = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2gender")}
    for u in utts:
        f["wav.scp"][u.utt] = str(u.wav)
        f["text"][u.utt] = u.info.text
        f["utt2spk"][u.utt] = u.info.speaker
        f["utt2emo"][u.utt] = u.info.emotion
        f["utt2gender"][u.utt] = u.info.gender
    return f


def prepare_ravdess(root: PathLike, out_dir: PathLike, seed: int = DEFAULT_SEED,
                    test_fraction: float = DEFAULT_TEST_FRACTION,
                    check_audio: bool = False) -> Dict:
    """Write the sets of SET_NAMES under ``out_dir``, all or nothing; return the counts."""
    _fraction(seed, test_fraction)
    root = check_root(root)
    out_dir = check_out_dir(out_dir, RavdessError)
    logging.info("reading %s", root)
    utts = collect_utterances(root, check_audio)
    plan = plan_sets(utts, seed, test_fraction)
    for name, actors in ACTOR_SETS.items():
        if not plan[name]:
            raise RavdessError(f"{root}: no utterance for {name} (actors {actors[0]}-{actors[-1]})")
    for name in ("random_train", "random_test"):
        if not plan[name]:
            raise RavdessError(f"{root}: {name} would be empty with --test_fraction "
                               f"{test_fraction} ({len(utts)} utterances)")
    sets = {name: _fields(plan[name]) for name in SET_NAMES}
    return {"num_utts": len(utts), "sets": write_sets(out_dir, sets, EMOTIONS, "ravdess")}
