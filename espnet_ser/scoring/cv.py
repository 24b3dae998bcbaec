"""Cross-validation summary over a recipe's folds: **mean** averages each fold's metric (each fold
weighs the same), **pooled** scores every fold's hypotheses together (each utterance weighs the same).
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
    """Write the pooled ``scores.json`` / ``result.txt`` and ``cv_summary.{md,json}`` (a row per fold,
    the mean and the pooled row) of the folds' scores.json; return the summary."""
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
        mean[key] = sum(vals) if key == "num_utts" else (
            sum(vals) / len(vals) if None not in vals else None)
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
    """``exp/<name>_fold<k>/decode_<tag>/fold<k>_test/score/scores.json`` of ``kind`` (None: from
    bin.score, "ser": bin.score_ser), grouped by outdir ``exp/<name>_cv/decode_<tag>/cv_test/score``."""
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


def fold_jobs(prog: str, args, files: Sequence, flags: Tuple[str, str], kind: Optional[str] = None
              ) -> List[Tuple[PathLike, Optional[List[str]], list]]:
    """``[(outdir, names, inputs)]`` of a CV entry point: ``files`` and ``--outdir``, or with
    ``--recipe_dir`` every fold group (inputs: scores.json, their directories for "ser");
    ``flags``: how the usage errors name ``files``."""
    error = f"espnet_ser.bin.{prog}: error:"
    if not args.recipe_dir:
        if not files or not args.outdir:
            raise SystemExit(f"{error} give {flags[1]} and --outdir, or --recipe_dir")
        return [(args.outdir, args.names.split() if args.names else None, files)]
    if files or args.outdir:
        raise SystemExit(f"{error} --recipe_dir excludes {flags[0]} and --outdir")
    groups = find_fold_groups(args.recipe_dir, args.folds.split(), kind=kind)
    jobs = [(out, [n for n, _ in g], [p if kind is None else p.parent for _, p in g])
            for out, g in groups.items()]
    if not jobs:
        what = "exp/*_fold<k>/decode_*/fold<k>_test scores" if kind is None else (
            "SER scores exp/*_fold<k>/decode_*/fold<k>_test/score")
        logging.warning(f"{args.recipe_dir}: no {what} yet")
    return jobs
