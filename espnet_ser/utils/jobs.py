"""Job split and per-job runs / merge of the ``*_inference`` CLIs: job J writes one Kaldi map
per output plus ``failed`` (``<utt> <reason>``) into ``OUTPUT_DIR/split<nj>/output.<J>``."""

import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from espnet_ser.utils.io import PathLike, atomic_write_text, read_kaldi_map, write_kaldi_map

FAILED = "failed"
# Preferred model files in an experiment directory, best first.
MODEL_FILE_PREFERENCE = ("valid.acc.ave.pth", "valid.acc_emo.ave.pth", "valid.acc.best.pth",
                         "valid.acc_emo.best.pth", "valid.loss.best.pth")


def split_utterances(utts: Sequence[str], nj: int) -> List[List[str]]:
    """``nj`` contiguous parts of the C-sorted ids (part ``J - 1`` is job ``J``), the first
    ``len(utts) % nj`` one longer (empty ones last). ValueError for ``nj < 1`` or duplicates."""
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    ordered = sorted(utts)
    if len(set(ordered)) != len(ordered):
        raise ValueError("utterance ids are not unique")
    base, extra = divmod(len(ordered), nj)
    bounds = [j * base + min(j, extra) for j in range(nj + 1)]
    return [ordered[bounds[j]:bounds[j + 1]] for j in range(nj)]


def part_dir(output_dir: Path, nj: int, job: int) -> Path:
    """Output directory of job ``job`` (1-based) of ``nj``."""
    return output_dir / f"split{nj}" / f"output.{job}"


def find_model_file(exp_dir: PathLike) -> Path:
    """The first of ``MODEL_FILE_PREFERENCE`` in ``exp_dir``, else its last ``*epoch.pth``."""
    exp_dir = Path(exp_dir)
    for name in MODEL_FILE_PREFERENCE:
        if (exp_dir / name).exists():
            return exp_dir / name
    epochs = sorted(exp_dir.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0]))
    if epochs:
        return epochs[-1]
    raise FileNotFoundError(
        f"{exp_dir}: no model file ({', '.join(MODEL_FILE_PREFERENCE)} or *epoch.pth)")


def experiment_files(exp_dir: PathLike, model_file: Optional[PathLike] = None) -> Tuple[Path, Path]:
    """``(config.yaml, model file)`` of an experiment (default model: :func:`find_model_file`)."""
    exp_dir = Path(exp_dir)
    if not (exp_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{exp_dir}: no config.yaml (not an experiment directory?)")
    model_file = Path(model_file) if model_file else find_model_file(exp_dir)
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file}: no such model file")
    logging.info(f"model file: {model_file}")
    return exp_dir / "config.yaml", model_file


def failure_reason(e: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` on one line, as written to ``failed``."""
    return " ".join(f"{type(e).__name__}: {e}".split())


def format_posterior(posterior: Mapping[str, float]) -> str:
    """``ang:0.0123 hap:...`` in the posterior's order."""
    return " ".join(f"{k}:{v:.4f}" for k, v in posterior.items())


def load_mat(scp: Union[PathLike, str], rxfile: str):
    """``kaldiio.load_mat(rxfile)``; a RuntimeError naming ``scp`` and ``rxfile`` on failure."""
    import kaldiio

    try:
        return kaldiio.load_mat(rxfile)
    except Exception as e:
        raise RuntimeError(f"{scp}: cannot read {rxfile}: {type(e).__name__}: {e}") from e


def run_jobs(output_dir: Path, nj: int, job: Optional[int], parts: List[List[str]],
             run_part: Callable[[List[str], Path], None]) -> None:
    """Call ``run_part(utts, part_dir)`` for job ``job``, or for every job when it is None."""
    for j in [job] if job is not None else range(1, nj + 1):
        if not 1 <= j <= nj:
            raise ValueError(f"--job {j} is outside 1..{nj}")
        run_part(parts[j - 1], part_dir(output_dir, nj, j))


def job_parser(doc: str, what: str):
    """An argparse parser with the arguments of every inference CLI (``what``: their verb)."""
    from espnet_ser.utils.cli import doc_parser

    p = doc_parser(doc)
    add = p.add_argument
    add("--exp_dir", type=Path, required=True, help="training experiment (config.yaml)")
    add("--model_file", type=Path, default=None,
        help="model parameters (default: the averaged / best model in exp_dir)")
    add("--output_dir", type=Path, required=True)
    add("--nj", type=int, default=1)
    add("--job", type=int, default=None, help=f"1-based part to {what} (default: all)")
    add("--merge", action="store_true", help="join the parts of a finished run")
    add("--device", default="cpu", help="cpu, cuda or cuda:N")
    add("--num_threads", type=int, default=1, help="torch CPU threads per job")
    add("--max_failures", type=int, default=None,
        help=f"exit non-zero when more utterances than this fail to {what} (per job, and over "
        "the set with --merge); default: no limit, the failures are written to "
        "OUTPUT_DIR/failed and counted in the log")
    return p


def run_or_merge(args, read_scp: Callable[[], Mapping[str, str]], outputs: Sequence[str],
                 run_part: Callable[[List[str], Dict[str, str], Path], None], **merge) -> None:
    """``--merge`` the parts of ``read_scp()`` (``merge``: keywords of :func:`merge_outputs`)
    or run ``run_part(utts, scp, out)`` for ``--job`` (all without it); errors exit 1."""
    try:
        scp = read_scp()
        parts = split_utterances(list(scp), args.nj)
        if args.merge:
            merge_outputs(args.output_dir, args.nj, parts, outputs, args.max_failures, **merge)
        else:
            run_jobs(args.output_dir, args.nj, args.job, parts,
                     lambda utts, out: run_part(utts, scp, out))
    except (OSError, ValueError, RuntimeError) as e:
        logging.error(str(e))
        sys.exit(1)


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


def write_outcomes(out: Path, utts: Sequence[str], outcome: Callable[[str], Mapping[str, str]],
                   failed_values: Mapping[str, str], max_failures: Optional[int],
                   verb: str = "decoding", done: str = "decoded",
                   start: Optional[float] = None) -> None:
    """:func:`write_part` of ``outcome(utt)`` (``{output: value}``) for every utterance; one
    that raises gets ``failed_values`` and its :func:`failure_reason` in ``failed``."""
    results: Dict[str, Dict[str, str]] = {name: {} for name in failed_values}
    failed: Dict[str, str] = {}
    start = time.time() if start is None else start
    for i, utt in enumerate(utts, 1):
        try:
            values = outcome(utt)
        except Exception as e:  # one utterance: record it and go on with the others
            failed[utt] = failure_reason(e)
            logging.error(f"utterance {utt}: {verb} failed: {failed[utt]}")
            values = failed_values
        for name in results:
            results[name][utt] = values[name]
        if i % max(1, len(utts) // 10) == 0 or i == len(utts):
            rate = i / max(time.time() - start, 1e-9)
            logging.info(f"{done} {i}/{len(utts)} utterances ({rate:.2f} utt/s)")
    write_part(out, len(utts), results, failed, max_failures)


def merge_outputs(output_dir: Path, nj: int, parts: List[List[str]], outputs: Sequence[str],
                  max_failures: Optional[int], *, optional: Sequence[str] = (),
                  job_kind: str = "decoding", done: str = "decoded",
                  failed_note: str = "failed to decode") -> None:
    """Join the jobs' ``outputs`` (the first counts the utterances), ``optional`` outputs some job
    wrote and ``failed`` into ``output_dir`` (each holding exactly its job's utterances, ``failed``
    a subset); write ``num_utts``; raise when more than ``max_failures`` failed or none was done."""
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
                raise FileNotFoundError(f"{f}: missing; {job_kind} job {job} of {nj} did not "
                                        "finish")
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
