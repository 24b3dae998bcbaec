"""Table 2 of the personality paper: UA and ACC of each fusion row with ground-truth (GT) and
predicted (Pred) traits, the mean over the five folds (the paper averages the splits), the
relative improvement over row 0 and the per-fold values, from ``score_ser_cv`` outputs."""

import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from espnet_ser.scoring import tables
from espnet_ser.scoring.results import ScoringError, load_scores
from espnet_ser.scoring.ser import SER_CV_KIND
from espnet_ser.ser.personality import TABLE2_ROWS
from espnet_ser.utils.io import PathLike, atomic_write_text

SYMBOL = {"projected": "q", "interacted": "q'", "none": "-"}
FUSION = {"sequential": "seq", "parallel": "par", None: "-"}
MODES = ("gt", "pred")


def cv_score_file(exp_dir: PathLike, config_prefix: str, row: int, mode: str) -> Path:
    """Where ``egs/pa_iemocap/run.sh`` writes the pooled folds of one row and mode."""
    suffix = "_pred" if mode == "pred" else ""
    return Path(exp_dir) / f"ser_{config_prefix}{row}_cv{suffix}" / "score" / "scores.json"


def collect_rows(exp_dir: PathLike, config_prefix: str = "train_ser_hubert_row"
                 ) -> Dict[int, Dict[str, Optional[dict]]]:
    """row -> mode -> the ``ser_cv`` scores (None: not run). Row 0 uses no traits, so its Pred
    entry is its GT run."""
    out = {}
    for row in TABLE2_ROWS:
        got = {}
        for mode in MODES:
            path = cv_score_file(exp_dir, config_prefix, row, "gt" if row == 0 else mode)
            got[mode] = load_scores(path) if path.is_file() else None
            if got[mode] is not None and got[mode].get("kind") != SER_CV_KIND:
                raise ScoringError(f"{path}: not a pooled-folds score (kind {got[mode].get('kind')})")
        out[row] = got
    return out


def _rel(value: float, base: Optional[float]) -> Optional[float]:
    return None if base is None or base == 0 else 100.0 * (value - base) / base


def table2(rows: Mapping[int, Mapping[str, Optional[dict]]]) -> dict:
    """Per row: the configuration, and per mode UA / ACC (fractions, the means over folds),
    their relative improvement over row 0 (%) and the per-fold values."""
    base = rows.get(0, {}).get("gt")
    out = {}
    for row, combo in TABLE2_ROWS.items():
        speaker, listener, fusion = combo or ("none", "none", None)
        entry = dict(speaker=SYMBOL[speaker] + ("_s" if speaker != "none" else ""),
                     listener=SYMBOL[listener] + ("_l" if listener != "none" else ""),
                     fusion=FUSION[fusion])
        for mode in MODES:
            s = rows.get(row, {}).get(mode)
            if s is None:
                entry[mode] = None
                continue
            ua, acc = s["ua_mean"] / 100, s["wa_mean"] / 100
            entry[mode] = dict(
                ua=ua, acc=acc, folds=[dict(name=f["name"], ua=f["ua"] / 100, acc=f["wa"] / 100)
                                       for f in s["folds"]],
                ua_rel=None if row == 0 else _rel(ua, base and base["ua_mean"] / 100),
                acc_rel=None if row == 0 else _rel(acc, base and base["wa_mean"] / 100))
        out[row] = entry
    return out


def _cells(m: Optional[dict]) -> List[str]:
    if m is None:
        return ["not run"] + [""] * 3
    rel = [tables.fmt_rate(m[k], 2) + ("%" if m[k] is not None else "") for k in ("ua_rel", "acc_rel")]
    return [f"{m['ua']:.4f}", f"{m['acc']:.4f}"] + rel


def render_table2(t: Mapping[int, dict]) -> Tuple[str, str]:
    """``(text, markdown)``: the paper's layout, then the per-fold UA / ACC."""
    header = ["No.", "speaker", "listener", "fusion", "GT UA", "GT ACC", "GT UA Rel.",
              "GT ACC Rel.", "Pred UA", "Pred ACC", "Pred UA Rel.", "Pred ACC Rel."]
    rows = [[str(r), e["speaker"], e["listener"], e["fusion"], *_cells(e["gt"]), *_cells(e["pred"])]
            for r, e in t.items()]
    names = sorted({f["name"] for e in t.values() for m in (e["gt"], e["pred"]) if m
                    for f in m["folds"]})
    fold_header = ["No.", "traits"] + [f"{n} {k}" for n in names for k in ("UA", "ACC")]
    fold_rows = []
    for r, e in t.items():
        for mode in MODES:
            m = e[mode]
            if m is None or (r == 0 and mode == "pred"):
                continue
            by = {f["name"]: f for f in m["folds"]}
            fold_rows.append([str(r), mode.upper()] + [
                f"{by[n][k]:.4f}" if n in by else "-" for n in names for k in ("ua", "acc")])
    note = ("UA / ACC: means over the folds of the per-fold unweighted / weighted accuracy; "
            "Rel.: relative improvement over row 0; row 0 uses no traits (GT = Pred).")
    text = "\n".join([tables.text_table(header, rows, title="Table 2 (PA-IEMOCAP, 5 folds)"),
                      note, "", tables.text_table(fold_header, fold_rows, title="Per fold")])
    md = "\n".join(["### Table 2", "", tables.markdown_table(header, rows), "", note, "",
                    "Per fold:", "", tables.markdown_table(fold_header, fold_rows)])
    return text + "\n", md + "\n"


def write_table2(exp_dir: PathLike, out_dir: PathLike,
                 config_prefix: str = "train_ser_hubert_row") -> dict:
    """Write ``table2.txt``, ``table2.md`` and ``table2.json`` into ``out_dir``."""
    t = table2(collect_rows(exp_dir, config_prefix))
    text, md = render_table2(t)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table2.json", json.dumps(t, indent=2) + "\n")
    atomic_write_text(out / "table2.md", md)
    atomic_write_text(out / "table2.txt", text)
    return t
