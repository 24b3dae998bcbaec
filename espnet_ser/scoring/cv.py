"""Cross-validation summary over the folds of a recipe (e.g. IEMOCAP's five sessions).

**mean** averages each fold's metric (each fold weighs the same); **pooled** scores every
fold's hypotheses together as one test set (each utterance weighs the same). From each fold's
``score/scores.json`` :func:`summarize_folds` writes the pooled ``scores.json`` / ``result.txt``
and ``cv_summary.{md,json}`` (a row per fold, the mean and the pooled row).
"""

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_ser.scoring import tables
from espnet_ser.scoring.results import (ScoringError, load_scores, read_json, score,
                                         write_score_outputs)
from espnet_ser.utils.io import atomic_write_text

PathLike = Union[str, Path]
# (key in scores.json, column title)
COLUMNS = (("num_utts", "Snt"), ("wa", "WA"), ("ua", "UA"), ("ww", "WW"), ("uw", "UW"),
           ("ww_no_emo", "WW no-emo"), ("uw_no_emo", "UW no-emo"))


def _concat(paths: Sequence[Path], out: Path) -> None:
    seen: Dict[str, Path] = {}
    lines: List[str] = []
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt = line.split(maxsplit=1)[0]
            if utt in seen:
                raise ScoringError(f"utterance {utt} is in {seen[utt]} and in {p}: folds overlap")
            seen[utt] = p
            lines.append(line)
    atomic_write_text(out, "".join(sorted(l + "\n" for l in lines)))


def summarize_folds(score_files: Sequence[PathLike], outdir: PathLike,
                    names: Optional[Sequence[str]] = None,
                    emotions: Optional[Sequence[str]] = None) -> dict:
    """Write the pooled scores and the fold / mean / pooled table; return the summary."""
    if not score_files:
        raise ValueError("no fold scores given")
    score_files = [Path(p) for p in score_files]
    names = list(names) if names else [p.parent.parent.name for p in score_files]
    if len(names) != len(score_files):
        raise ValueError(f"{len(names)} fold names for {len(score_files)} score files")
    folds = [load_scores(p) for p in score_files]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _concat([Path(s["ref"]) for s in folds], outdir / "ref.txt")
    _concat([Path(s["hyp"]) for s in folds], outdir / "hyp.txt")
    pooled = score(outdir / "ref.txt", outdir / "hyp.txt", emotions or folds[0]["emotions"])
    write_score_outputs(pooled, outdir)

    mean = {}
    for key, _ in COLUMNS:
        vals = [s.get(key) for s in folds]
        if key == "num_utts":
            mean[key] = sum(vals)
        else:
            mean[key] = sum(vals) / len(vals) if None not in vals else None
    summary = dict(
        folds={n: {k: s.get(k) for k, _ in COLUMNS} for n, s in zip(names, folds)},
        mean=mean,
        pooled={k: pooled.scores.get(k) for k, _ in COLUMNS},
        score_files=[str(p) for p in score_files],
        definitions=dict(mean="average of the per-fold metrics (Snt: total)",
                         pooled="all folds' hypotheses scored together as one set"),
    )
    header = ["fold"] + [title for _, title in COLUMNS]
    rows = [[label] + [str(m[k]) if k == "num_utts" else tables.fmt_rate(m[k]) for k, _ in COLUMNS]
            for label, m in [*summary["folds"].items(), ("mean", mean), ("pooled", summary["pooled"])]]
    md = (f"Cross-validation over {len(folds)} folds (rates in %; WW/UW with the emotion token "
          f"scored as a word, 'no-emo' without it).\n\n" + tables.markdown_table(header, rows))
    atomic_write_text(outdir / "cv_summary.md", md)
    atomic_write_text(outdir / "cv_summary.json", json.dumps(summary, indent=2) + "\n")
    logging.info(f"wrote {outdir / 'cv_summary.md'}")
    return summary


def _kind(path: Path) -> Optional[str]:
    """The ``kind`` of a scores.json (None for emotion-token scores or an unreadable file)."""
    try:
        s = read_json(path)
    except (OSError, ValueError):
        return None  # reported by whoever loads it
    return s.get("kind") if isinstance(s, dict) else None


def find_fold_groups(recipe_dir: PathLike, folds: Sequence[str], kind: Optional[str] = None
                     ) -> Dict[Path, List[Tuple[str, Path]]]:
    """Per-fold scores ``exp/<name>_fold<k>/decode_<tag>/fold<k>_test/score/scores.json``.

    Grouped by their outdir ``exp/<name>_cv/decode_<tag>/cv_test/score``; only files whose
    ``kind`` is ``kind`` (None: ``bin.score``'s emotion-token scores, "ser": ``bin.score_ser``).
    """
    recipe_dir = Path(recipe_dir)
    groups: Dict[Path, List[Tuple[str, Path]]] = {}
    for k in folds:
        pattern = f"exp/*_fold{k}/decode_*/fold{k}_test/score/scores.json"
        for p in sorted(recipe_dir.glob(pattern)):
            if _kind(p) != kind:
                continue
            exp_name = p.parents[3].name[: -len(f"_fold{k}")]
            out = recipe_dir / "exp" / f"{exp_name}_cv" / p.parents[2].name / "cv_test" / "score"
            groups.setdefault(out, []).append((f"fold{k}", p))
    return groups
