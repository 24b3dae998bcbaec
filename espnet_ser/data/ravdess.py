"""RAVDESS speech (``Audio_Speech_Actors_01-24/``) to Kaldi data directories.

The corpus holds ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (48 kHz) with seven two-digit
codes: modality (03 = audio-only), vocal channel (01 = speech), emotion (01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity
(01 normal, 02 strong; neutral has no strong), statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), repetition (01, 02) and actor (01 .. 24; odd
= male, even = female). The full speech set has 1,440 files, 60 per actor.

Names starting with ``.`` (macOS ``._*`` files, ``.DS_Store``) are ignored; other files
that are not ``.wav`` (README, ``.mp4``) are skipped with a log line. Any other ``.wav``
must follow the pattern with every code in range, lie directly in the ``Actor_XX``
folder of its actor field, be audio-only speech (03-01) and not be a strong neutral;
otherwise RavdessError names the file.

``wav.scp`` lists the original 48 kHz files by absolute path; resampling to 16 kHz is
done at feature extraction (stage 3, ``--resample true``). Utterance ids are
``actorXX-<file stem>`` and speakers ``actorXX``, so utt2spk sorts by speaker.
``text`` is the statement in lower case without punctuation; ``utt2gender`` is ``m`` or
``f``. Intensity is not written to a file of its own (it is the fourth code of the id).

Output sets: ``ravdess_all``; ``random_train`` / ``random_test``, a seeded 80:20 split
stratified by emotion (scikit-learn's, see :func:`random_split`: 1,152 / 288 on the full
corpus); ``actor_train`` (actors 1-18), ``actor_valid``
(19-20) and ``actor_test`` (21-24).
"""

import logging
import numbers
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence, Tuple

from espnet_ser.data.datadir import (
    DataDirError,
    PathLike,
    install_sets,
    validate_data_dir,
    write_data_dir,
)
from espnet_ser.data.split import SplitError, stratified_split

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
ACTOR_SETS = {"actor_train": range(1, 19), "actor_valid": range(19, 21),
              "actor_test": range(21, 25)}
SET_NAMES = ("ravdess_all", "random_train", "random_test") + tuple(ACTOR_SETS)
# With this seed scikit-learn's stratified allocation gives calm, fearful and surprised
# 39 test files each on the full corpus, as in the SSL comparison paper's reports.
DEFAULT_SEED = 101
DEFAULT_TEST_FRACTION = 0.2

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
    """Decode ``MM-VV-EE-II-SS-RR-AA.wav`` (the ``.wav`` is optional).

    Raises RavdessError (without the path) for a name that does not follow the pattern,
    a code out of range, a file that is not audio-only speech, or a strong neutral.
    """
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
            f"audio-only speech ({MODALITY_AUDIO_ONLY:02d}-{CHANNEL_SPEECH:02d}) is expected"
        )
    if emo == 1 and inten == 2:
        raise RavdessError(f"name {name!r}: neutral (01) has no strong intensity (02)")
    return RavdessFile(modality, channel, EMOTIONS[emo - 1], INTENSITIES[inten - 1],
                       statement, rep, actor)


def utt_id(stem: str, info: RavdessFile) -> str:
    """``03-01-05-02-01-01-07`` -> ``actor07-03-01-05-02-01-01-07``."""
    return f"{info.speaker}-{stem}"


def check_root(root: PathLike) -> Path:
    """Return the absolute corpus root, or raise naming ``--ravdess_root``."""
    root = Path(os.path.abspath(os.path.expanduser(str(root))))
    if not root.is_dir():
        raise RavdessError(f"--ravdess_root {root}: no such directory")
    has_actor_dirs = any(_ACTOR_DIR_RE.match(p.name) and p.is_dir() for p in root.iterdir())
    if not has_actor_dirs:
        for p in sorted(root.iterdir()):
            if p.is_dir() and p.name.lower() == CORPUS_DIR_NAME.lower():
                raise RavdessError(
                    f"--ravdess_root {root} has no Actor_XX folder but contains {p.name}; "
                    f"did you mean --ravdess_root {p}?"
                )
    return root


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _is_wav(path: Path) -> bool:
    return path.suffix.lower() == ".wav"


def _check_audio(wav: Path) -> None:
    import soundfile

    try:
        info = soundfile.info(str(wav))
    except Exception as e:
        raise RavdessError(f"{wav}: cannot read audio header ({e})") from e
    if info.samplerate != SAMPLE_RATE:
        raise RavdessError(f"{wav}: {info.samplerate} Hz; expected {SAMPLE_RATE} Hz")
    if info.channels != 1:
        logging.warning("%s: %d channels (not mono)", wav, info.channels)


def collect_utterances(root: Path, check_audio: bool = False) -> List[Utterance]:
    """Read ``root/Actor_XX/*.wav``; return the utterances sorted by id.

    Only the root and its folders are listed (no deeper). Raises RavdessError naming
    the file for a ``.wav`` that is misnamed, out of place or outside an ``Actor_XX``
    folder, and when there is no ``.wav`` at all.
    """
    utts: Dict[str, Utterance] = {}
    skipped = 0
    for entry in sorted(p for p in root.iterdir() if _visible(p)):
        if not entry.is_dir():
            if _is_wav(entry):
                raise RavdessError(f"{entry}: not inside an Actor_XX folder")
            logging.info("skipping %s (not a .wav file)", entry)
            skipped += 1
            continue
        m = _ACTOR_DIR_RE.match(entry.name)
        files = sorted(p for p in entry.iterdir() if _visible(p))
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
                _check_audio(path)
            utts[uid] = Utterance(uid, path, info)
    if not utts:
        raise RavdessError(f"--ravdess_root {root}: no .wav files (expected "
                           f"Actor_01 .. Actor_{NUM_ACTORS} folders of MM-VV-EE-II-SS-RR-AA.wav)")
    if skipped:
        logging.info("skipped %d files that are not .wav", skipped)
    if len(utts) != EXPECTED_FILES:
        logging.warning("found %d speech files; the full corpus has %d", len(utts),
                        EXPECTED_FILES)
    return [utts[k] for k in sorted(utts)]


def random_split(utts: Sequence[Utterance], seed: int = DEFAULT_SEED,
                 test_fraction: float = DEFAULT_TEST_FRACTION
                 ) -> Tuple[List[Utterance], List[Utterance]]:
    """Split stratified by emotion; return ``(train, test)`` sorted by id.

    The toolkit's stratified split (:func:`espnet_ser.data.split.stratified_split`,
    scikit-learn's ``train_test_split(..., stratify=emotions, test_size=test_fraction,
    random_state=seed)``) over the utterances sorted in C order. On the full corpus (96
    neutral, 192 of each other emotion) ``test_fraction`` 0.2 gives 1,152 / 288, and
    the default seed gives calm, fearful and surprised 39 test files each (neutral 19,
    the others 38), the supports of the SSL comparison paper's classification reports.
    The same utterances and seed always give the same split.
    """
    check_split_args(seed, test_fraction)
    ordered = sorted(utts, key=lambda u: u.utt)
    try:
        return stratified_split(ordered, [u.info.emotion for u in ordered],
                                float(test_fraction), int(seed), what="RAVDESS random split")
    except SplitError as e:
        raise RavdessError(str(e)) from e


def check_split_args(seed: int, test_fraction: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise RavdessError(f"--seed must be a non-negative integer, got {seed!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0.0 < test_fraction < 1.0:
        raise RavdessError(f"--test_fraction must be between 0 and 1 (exclusive), "
                           f"got {test_fraction!r}")


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
    """Write the sets of SET_NAMES under ``out_dir``; return the counts.

    Every set is written and validated in a temporary directory next to ``out_dir``
    and moved into place only when all succeeded; sets of the same name are replaced,
    anything else in ``out_dir`` is left alone.
    """
    check_split_args(seed, test_fraction)
    root = check_root(root)
    out_dir = Path(os.path.abspath(os.path.expanduser(str(out_dir))))
    if out_dir.exists() and not out_dir.is_dir():
        raise RavdessError(f"--out_dir {out_dir}: exists and is not a directory")
    logging.info("reading %s", root)
    utts = collect_utterances(root, check_audio)
    plan = plan_sets(utts, seed, test_fraction)
    for name, actors in ACTOR_SETS.items():
        if not plan[name]:
            raise RavdessError(f"{root}: no utterance for {name} "
                               f"(actors {actors[0]}-{actors[-1]})")
    for name in ("random_train", "random_test"):
        if not plan[name]:
            raise RavdessError(f"{root}: {name} would be empty with --test_fraction "
                               f"{test_fraction} ({len(utts)} utterances)")
    counts: Dict = {"num_utts": len(utts), "sets": {}}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.ravdess.", dir=str(out_dir.parent)))
    created_out = False
    try:
        for name in SET_NAMES:
            write_data_dir(staging / name, _fields(plan[name]), emotions=EMOTIONS)
            validate_data_dir(staging / name, emotions=EMOTIONS)
            per = Counter(u.info.emotion for u in plan[name])
            counts["sets"][name] = {
                "num_utts": len(plan[name]),
                "num_speakers": len({u.info.speaker for u in plan[name]}),
                "per_emotion": {e: per[e] for e in EMOTIONS},
            }
        if not out_dir.exists():
            out_dir.mkdir()
            created_out = True
        install_sets(staging, out_dir, SET_NAMES)
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
    for name in SET_NAMES:
        c = counts["sets"][name]
        logging.info("%s: %d utterances, %d speakers (%s)", out_dir / name, c["num_utts"],
                     c["num_speakers"], ", ".join(f"{e} {n}" for e, n in c["per_emotion"].items()))
    return counts
