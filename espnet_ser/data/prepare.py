"""Steps shared by the corpus preparations (IEMOCAP, RAVDESS, mini_emo) and their CLIs."""

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Type

from espnet_ser.data import datadir
from espnet_ser.data.datadir import DataDirError, PathLike, write_data_dir
from espnet_ser.utils.cli import doc_parser, setup_logging, str2bool


def absolute(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def visible_entries(directory: Path) -> List[Path]:
    """The entries of ``directory`` whose names do not start with ``.``, sorted."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def check_root(root: PathLike, option: str, error: Type[DataDirError], corpus_dir: str,
               marker: str, is_tree: Callable[[Path], bool]) -> Path:
    """The absolute ``--<option>`` directory; ``error`` if it is missing, or if it is not a tree
    (``is_tree``) but holds one named ``corpus_dir`` (any case), naming that one."""
    root = absolute(root)
    if not root.is_dir():
        raise error(f"--{option} {root}: no such directory")
    if not is_tree(root):
        for p in sorted(root.iterdir()):
            if p.is_dir() and p.name.lower() == corpus_dir.lower() and is_tree(p):
                raise error(f"--{option} {root} has no {marker} but contains {p.name}; "
                            f"did you mean --{option} {p}?")
    return root


def check_out_dir(out_dir: PathLike, error: Type[DataDirError] = DataDirError) -> Path:
    out_dir = absolute(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"--out_dir {out_dir}: exists and is not a directory")
    return out_dir


def check_wav_header(wav: Path, sample_rate: int, error: Type[DataDirError] = DataDirError,
                     mono: bool = True) -> None:
    """Raise ``error`` unless ``wav`` has a readable header at ``sample_rate`` Hz (and one
    channel when ``mono``; otherwise more channels are only logged)."""
    import soundfile

    try:
        info = soundfile.info(str(wav))
    except Exception as e:
        raise error(f"{wav}: cannot read audio header ({e})") from e
    if mono and (info.samplerate != sample_rate or info.channels != 1):
        raise error(f"{wav}: {info.samplerate} Hz, {info.channels} channel(s); expected "
                    f"{sample_rate} Hz mono")
    if info.samplerate != sample_rate:
        raise error(f"{wav}: {info.samplerate} Hz; expected {sample_rate} Hz")
    if info.channels != 1:
        logging.warning("%s: %d channels (not mono)", wav, info.channels)


def write_sets(out_dir: Path, sets: Mapping[str, Mapping[str, Mapping[str, str]]],
               emotions: Sequence[str], tag: str) -> Dict[str, Dict]:
    """Write and validate the data directories ``{name: fields}`` beside ``out_dir``, then
    install all or none; return and log ``{name: {num_utts, num_speakers, per_emotion}}``."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{tag}.", dir=str(out_dir.parent)))
    created_out = False
    counts: Dict[str, Dict] = {}
    try:
        for name, fields in sets.items():
            write_data_dir(staging / name, fields, emotions=emotions)
            per = Counter(fields["utt2emo"].values())
            counts[name] = {"num_utts": len(fields["utt2emo"]),
                            "num_speakers": len(set(fields["utt2spk"].values())),
                            "per_emotion": {e: per[e] for e in emotions}}
        if not out_dir.exists():
            out_dir.mkdir()
            created_out = True
        datadir.install_sets(staging, out_dir, list(sets))
    except BaseException:
        if created_out:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    for name, c in counts.items():
        logging.info("%s: %d utterances, %d speakers (%s)", out_dir / name, c["num_utts"],
                     c["num_speakers"], ", ".join(f"{e} {n}" for e, n in c["per_emotion"].items()))
    return counts


def corpus_parser(description: str, root_option: str, root_help: str, out_help: str,
                  check_audio_help: str) -> argparse.ArgumentParser:
    """The corpus root, --out_dir, --check_audio and --log_level of a ``prepare_<corpus>``."""
    p = doc_parser(description, show_defaults=True)
    p.add_argument(f"--{root_option}", required=True, help=root_help)
    p.add_argument("--out_dir", required=True, help=out_help)
    p.add_argument("--check_audio", type=str2bool, default=False, help=check_audio_help)
    p.add_argument("--log_level", default="INFO")
    return p


def run_prepare(parser: argparse.ArgumentParser, cmd: Optional[Sequence[str]],
                prepare: Callable[[argparse.Namespace], Dict]) -> Dict:
    """Parse ``cmd``, run ``prepare(args)``: exit 1 with ``ERROR: ...`` on a DataDirError."""
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    start = time.time()
    try:
        counts = prepare(args)
    except DataDirError as e:
        sys.exit(f"ERROR: {e}")
    logging.info("%d utterances in %d sets, done in %.1f s", counts["num_utts"],
                 len(counts["sets"]), time.time() - start)
    return counts
