"""Split a set into jobs and merge the jobs' outputs, for the ``*_inference`` entry points.

A set of utterances is split into ``nj`` contiguous parts of its C-sorted list
(:func:`espnet_ser.features.fbank.split_utterances`); job ``J`` (1-based) writes its
outputs, one Kaldi map per output name plus ``failed`` (``<utt> <reason>``), into
``OUTPUT_DIR/split<nj>/output.<J>`` (:func:`part_dir`). :func:`merge_parts` checks that
every output file of a job holds exactly that job's utterances (``failed`` may hold a
subset) and writes the merged maps, ``num_utts`` and the failure report into
``OUTPUT_DIR``.
"""

import logging
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from espnet_ser.data.datadir import atomic_write_text, read_kaldi_map, write_kaldi_map

FAILED = "failed"


def part_dir(output_dir: Path, nj: int, job: int) -> Path:
    """Output directory of job ``job`` (1-based) of ``nj``."""
    return output_dir / f"split{nj}" / f"output.{job}"


def split_parts(utts: Sequence[str], nj: int) -> List[List[str]]:
    """``nj`` contiguous parts of the C-sorted utterance list (part ``J - 1`` is job ``J``)."""
    from espnet_ser.features.fbank import split_utterances

    return split_utterances(list(utts), nj)


def run_jobs(output_dir: Path, nj: int, job: Optional[int], parts: List[List[str]],
             run_part: Callable[[List[str], Path], None]) -> None:
    """Call ``run_part(utts, part_dir)`` for job ``job``, or for every job when it is None."""
    jobs = [job] if job is not None else list(range(1, nj + 1))
    for j in jobs:
        if not 1 <= j <= nj:
            raise ValueError(f"--job {j} is outside 1..{nj}")
        run_part(parts[j - 1], part_dir(output_dir, nj, j))


def report_failures(num_failed: int, num_utts: int, failed_file: Path, max_failures) -> None:
    """Log the failure count; raise when it exceeds ``max_failures``."""
    if num_failed:
        logging.warning(f"{num_failed} of {num_utts} utterances failed (written with empty "
                        f"outputs); see {failed_file}")
    else:
        logging.info(f"0 of {num_utts} utterances failed")
    if max_failures is not None and num_failed > max_failures:
        raise RuntimeError(f"{num_failed} utterances failed, more than "
                           f"--max_failures {max_failures}; see {failed_file}")


def write_part(out: Path, num_utts: int, results: Mapping[str, Mapping[str, str]],
               failed: Dict[str, str], max_failures: Optional[int]) -> None:
    """Write one job's outputs (``failed`` first) into ``out``, then report its failures."""
    out.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out / FAILED, failed)
    for name, values in results.items():
        write_kaldi_map(out / name, values)
    report_failures(len(failed), num_utts, out / FAILED, max_failures)


def merge_parts(output_dir: Path, nj: int, parts: List[List[str]], outputs: Sequence[str],
                max_failures: Optional[int], *, optional: Sequence[str] = (),
                job_kind: str = "decoding", done: str = "decoded",
                failed_note: str = "failed to decode") -> None:
    """Join the outputs of the ``nj`` jobs of ``parts`` into ``output_dir``.

    ``outputs`` (the first one counts the utterances) must be in every job directory, as
    must ``failed``; an ``optional`` output is merged when some job wrote it, and
    otherwise removed from ``output_dir`` (left by an earlier run). Every file must hold
    exactly its job's utterances (``failed`` a subset of them); errors name the file and
    the job. After writing the merged maps and ``num_utts``, raises when more than
    ``max_failures`` utterances failed or when none was ``done``.
    """
    dirs = [(job, utts, part_dir(output_dir, nj, job))
            for job, utts in enumerate(parts, 1) if utts]
    present = [name for name in optional if any((d / name).is_file() for _, _, d in dirs)]
    names = tuple(outputs) + tuple(present) + (FAILED,)
    merged = {name: {} for name in names}
    for job, utts, d in dirs:
        in_job = set(utts)
        for name in names:
            f = d / name
            if not f.is_file():
                raise FileNotFoundError(f"{f}: missing; {job_kind} job {job} of {nj} did not finish")
            m = read_kaldi_map(f, allow_empty_value=True)
            if name == FAILED:
                stray = [u for u in m if u not in in_job]
                if stray:
                    raise ValueError(f"{f}: utterance {stray[0]} is not in job {job}")
            elif sorted(m) != sorted(utts):
                raise ValueError(f"{f}: holds {len(m)} utterances, job {job} had {len(utts)}")
            merged[name].update(m)
    for name in names:
        write_kaldi_map(output_dir / name, merged[name])
    for name in optional:
        if name not in present and (output_dir / name).exists():
            (output_dir / name).unlink()
    num_utts, num_failed = len(merged[outputs[0]]), len(merged[FAILED])
    atomic_write_text(output_dir / "num_utts", f"{num_utts}\n")
    logging.info(f"merged {nj} parts into {output_dir}: {num_utts} utterances, "
                 f"{num_failed} {failed_note}")
    report_failures(num_failed, num_utts, output_dir / FAILED, max_failures)
    if num_utts and num_failed == num_utts:
        raise RuntimeError(f"no utterance was {done}; see {output_dir / FAILED}")
