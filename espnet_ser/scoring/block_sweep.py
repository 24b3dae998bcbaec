"""The GST paper's Figure 3: pooled cross-fold WER and accuracy against the one conditioned block.

Blocks are 0-based as in ``cond_layers`` (the paper's 1-based numbers are shown too); the run
conditioning every block (``exp/<base>_<tag>_cv``), when present, is the "all" row and a dashed line.
"""

import json
import logging
import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

from espnet_ser.scoring import tables
from espnet_ser.scoring.results import ScoringError, load_scores
from espnet_ser.utils.io import atomic_write_text
from espnet_ser.utils.plotting import agg_figure, finish_axes, finish_figure

PathLike = Union[str, Path]
CV_SCORES = Path("cv_test") / "score" / "scores.json"
# (key in scores.json, column title); rates in %
WER_METRICS = (("ww", "WW"), ("uw", "UW"), ("ww_no_emo", "WW no-emo"))
ACC_METRICS = (("wa", "WA"), ("ua", "UA"))


def find_block_sweeps(recipe_dir: PathLike, base: str) -> Dict[Tuple[str, str], Dict[int, Path]]:
    """``{(tag, decode_dir): {k: exp/<base>_block<k>_<tag>_cv/<decode_dir>/cv_test/score/scores.json}}``."""
    exp = Path(recipe_dir) / "exp"
    name_re = re.compile(re.escape(base) + r"_block(\d+)_(.+)_cv")
    groups: Dict[Tuple[str, str], Dict[int, Path]] = {}
    for p in sorted(exp.glob(f"{base}_block*_cv/decode_*/{CV_SCORES.as_posix()}")):
        m = name_re.fullmatch(p.parents[3].name)
        if m:
            groups.setdefault((m.group(2), p.parents[2].name), {})[int(m.group(1))] = p
    return groups


def _rows(points: Mapping[int, Mapping], reference: Optional[Mapping]):
    keys = WER_METRICS + ACC_METRICS

    def row(block: str, paper_block: str, s: Mapping) -> list:
        return [block, paper_block, tables.fmt_count(s.get("num_utts"))] + [
            tables.fmt_rate(s.get(key)) for key, _ in keys]

    rows = [row(str(k), str(k + 1), points[k]) for k in sorted(points)]
    rows += [row("all", "all", reference)] if reference is not None else []
    return ["block", "paper block", "Snt"] + [title for _, title in keys], rows


def _plot(points: Mapping[int, Mapping], reference: Optional[Mapping], path: Path, title: str) -> None:
    blocks = sorted(points)
    fig = agg_figure((10, 4))
    for n, (metrics, ylabel) in enumerate(((WER_METRICS, "WER (%)"), (ACC_METRICS, "accuracy (%)")), 1):
        ax = fig.add_subplot(1, 2, n)
        for key, label in metrics:
            xs = [k + 1 for k in blocks if points[k].get(key) is not None]
            ys = [points[k][key] for k in blocks if points[k].get(key) is not None]
            if not xs:
                continue
            line, = ax.plot(xs, ys, marker="o", markersize=4, label=label)
            if reference is not None and reference.get(key) is not None:
                ax.axhline(reference[key], linestyle="--", linewidth=1, color=line.get_color(),
                           label=f"{label}, all blocks")
        ax.set_xticks([k + 1 for k in blocks])
        finish_axes(ax, "conditioned encoder block (1 = first)", ylabel)
    finish_figure(fig, path, title)


def write_block_sweep(score_files: Mapping[int, PathLike], outdir: PathLike,
                      reference_file: Optional[PathLike] = None, title: str = "") -> dict:
    """Write ``block_sweep.{png,md,json}`` of ``{block: pooled scores.json}`` to ``outdir``; return
    the summary. ScoringError naming both files when two score different numbers of utterances."""
    if not score_files:
        raise ScoringError("no block scores given")
    points = {int(k): load_scores(p) for k, p in score_files.items()}
    reference = load_scores(reference_file) if reference_file is not None else None
    named = {k: Path(p) for k, p in score_files.items()}
    if reference_file is not None:
        named["all"] = Path(reference_file)
    counts = {k: (points[k] if k != "all" else reference).get("num_utts") for k in named}
    first = min(points)
    for k, n in counts.items():
        if n != counts[first]:
            raise ScoringError(
                f"{named[k]} scores {n} utterances but {named[first]} scores {counts[first]}: "
                "the block runs were not evaluated on the same folds (run every block on the same --folds)")
    outdir = Path(outdir)
    header, rows = _rows(points, reference)
    md = ((f"{title}\n\n" if title else "")
          + "Pooled cross-validation scores (all test folds as one set; rates in %) against the "
          "one conditioned encoder block (block: 0-based cond_layers index; paper block: 1-based, "
          "as the paper's Figure 3; all: every block conditioned).\n\n"
          + tables.markdown_table(header, rows))
    atomic_write_text(outdir / "block_sweep.md", md)
    keys = ["num_utts"] + [key for key, _ in WER_METRICS + ACC_METRICS]
    summary = dict(
        blocks={str(k): {key: points[k].get(key) for key in keys} for k in sorted(points)},
        all_blocks=None if reference is None else {key: reference.get(key) for key in keys},
        score_files={str(k): str(p) for k, p in named.items()},
    )
    atomic_write_text(outdir / "block_sweep.json", json.dumps(summary, indent=2) + "\n")
    _plot(points, reference, outdir / "block_sweep.png", title)
    logging.info(f"wrote {outdir / 'block_sweep.png'} and {outdir / 'block_sweep.md'} ({len(points)} blocks)")
    return summary


def write_block_sweeps(recipe_dir: PathLike, base: str) -> Dict[Tuple[str, str], Path]:
    """Every sweep of ``base`` to ``exp/<base>_block_sweep_<tag>/<decode_dir>/`` (reference:
    ``exp/<base>_<tag>_cv`` if present); returns the outdirs. ScoringError without any block run."""
    recipe_dir = Path(recipe_dir)
    groups = find_block_sweeps(recipe_dir, base)
    if not groups:
        raise ScoringError(
            f"{recipe_dir / 'exp'}: no {base}_block<k>_<tag>_cv/decode_*/{CV_SCORES.as_posix()} "
            "(run the block experiments through stage 6 first)")
    written = {}
    for (tag, decode_dir), files in sorted(groups.items()):
        ref = recipe_dir / "exp" / f"{base}_{tag}_cv" / decode_dir / CV_SCORES
        outdir = recipe_dir / "exp" / f"{base}_block_sweep_{tag}" / decode_dir
        write_block_sweep(files, outdir, ref if ref.is_file() else None,
                          title=f"{base} ({tag}, {decode_dir}): one conditioned block")
        written[(tag, decode_dir)] = outdir
    return written
