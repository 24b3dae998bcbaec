"""Classification report of emotion predictions: per-class precision, recall, F1, support.

Computed from the confusion counts, in the layout of scikit-learn's
``classification_report`` (values are fractions 0..1 as there):

- precision of class c: correct predictions of c / predictions of c (0 when c is never
  predicted);
- recall of class c: correct predictions of c / reference utterances of c (0 when c has
  no reference utterance);
- F1: harmonic mean of precision and recall (0 when both are 0);
- support: reference utterances of c;
- accuracy: correct predictions / all utterances (= WA);
- macro avg: unweighted mean over the classes **present in the reference** (support > 0),
  so that the macro recall equals UA; a listed class without reference utterances is
  shown in its row but left out of the average;
- weighted avg: mean over classes weighted by support.

A hypothesis of ``None`` (no prediction, a failed decode) or a code outside ``classes``
is wrong: it lowers the recall of its reference class and counts as a prediction of no
listed class, so it does not lower any precision.
"""

from typing import Dict, Mapping, Optional, Sequence

AVERAGES = ("macro avg", "weighted avg")


def _prf(tp: int, predicted: int, support: int) -> Dict[str, float]:
    p = tp / predicted if predicted else 0.0
    r = tp / support if support else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f}


def classification_report(
    refs: Sequence[str],
    hyps: Sequence[Optional[str]],
    classes: Sequence[str],
) -> dict:
    """Precision / recall / F1 / support per class, macro and weighted averages, accuracy.

    Args:
        refs: reference class of each utterance (each must be in ``classes``).
        hyps: predicted class of each utterance, ``None`` for no prediction.
        classes: the classes of the report, in row order.

    Returns:
        ``{"classes": [...], "per_class": {c: {"precision", "recall", "f1", "support"}},
        "macro avg": {...}, "weighted avg": {...}, "accuracy": float, "num_utts": int,
        "correct": int}``; ``macro avg`` / ``weighted avg`` hold precision, recall, f1 and
        the support they cover.
    """
    refs, hyps, classes = list(refs), list(hyps), list(classes)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("classification_report: no utterances")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class in {classes}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({r for r in refs if r not in index})
    if unknown:
        raise ValueError(f"reference class {unknown[0]!r} is not one of {' '.join(classes)}")
    k = len(classes)
    support = [0] * k
    predicted = [0] * k
    tp = [0] * k
    for r, h in zip(refs, hyps):
        support[index[r]] += 1
        if h in index:
            predicted[index[h]] += 1
            if h == r:
                tp[index[h]] += 1
    per_class = {}
    for c, i in index.items():
        per_class[c] = dict(_prf(tp[i], predicted[i], support[i]), support=support[i])
    present = [c for c in classes if per_class[c]["support"] > 0]
    total = len(refs)
    macro = {m: sum(per_class[c][m] for c in present) / len(present)
             for m in ("precision", "recall", "f1")}
    macro["support"] = sum(per_class[c]["support"] for c in present)
    weighted = {m: sum(per_class[c][m] * per_class[c]["support"] for c in present) / total
                for m in ("precision", "recall", "f1")}
    weighted["support"] = total
    correct = sum(tp)
    return {
        "classes": classes,
        "per_class": per_class,
        "macro avg": macro,
        "weighted avg": weighted,
        "accuracy": correct / total,
        "num_utts": total,
        "correct": correct,
    }


def report_from_predictions(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                            classes: Sequence[str]) -> dict:
    """:func:`classification_report` of two ``utt -> code`` maps over the utterances of ``ref``."""
    utts = list(ref)
    return classification_report([ref[u] for u in utts], [hyp[u] for u in utts], classes)


def as_percent(report: Mapping) -> dict:
    """A copy of a report with every rate (not the supports and counts) in percent."""
    def scale(d):
        return {k: (v if k == "support" else 100.0 * v) for k, v in d.items()}

    out = dict(report)
    out["per_class"] = {c: scale(v) for c, v in report["per_class"].items()}
    for name in AVERAGES:
        out[name] = scale(report[name])
    out["accuracy"] = 100.0 * report["accuracy"]
    return out


def render_classification_report(report: Mapping, digits: int = 4) -> str:
    """The report as text in the layout of scikit-learn's ``classification_report``.

    Values are printed as given (fractions from :func:`classification_report`, percent
    after :func:`as_percent`) with ``digits`` decimals.
    """
    headers = ["precision", "recall", "f1-score", "support"]
    names = list(report["per_class"]) + list(AVERAGES)
    width = max(len("weighted avg"), max(len(n) for n in names), digits)
    col = max(len(h) for h in headers) + 1
    num_width = max(col, digits + 6)
    head = " " * width + "".join(h.rjust(num_width) for h in headers)
    lines = [head, ""]

    def row(name, d):
        vals = [f"{d[m]:.{digits}f}".rjust(num_width) for m in ("precision", "recall", "f1")]
        return name.rjust(width) + "".join(vals) + str(d["support"]).rjust(num_width)

    for c, d in report["per_class"].items():
        lines.append(row(c, d))
    lines.append("")
    acc = f"{report['accuracy']:.{digits}f}".rjust(num_width)
    lines.append("accuracy".rjust(width) + " " * (2 * num_width) + acc
                 + str(report["num_utts"]).rjust(num_width))
    for name in AVERAGES:
        lines.append(row(name, report[name]))
    return "\n".join(lines) + "\n"
