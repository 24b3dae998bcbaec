"""Classification report of emotion predictions: scikit-learn's, values 0..1, ``zero_division=0``.

The averages cover the classes present in the reference (so the macro recall is UA); a
hypothesis None (failed decode) or a code outside ``classes`` is wrong and lowers no precision.
"""

from typing import Mapping, Optional, Sequence

from sklearn.metrics import accuracy_score, precision_recall_fscore_support

AVERAGES = ("macro avg", "weighted avg")
_NO_PREDICTION = "\0none"  # stands for a None hypothesis; never a class


def _prf(refs, hyps, labels, average=None) -> dict:
    p, r, f, s = precision_recall_fscore_support(refs, hyps, labels=labels, average=average,
                                                 zero_division=0)
    return {"precision": p, "recall": r, "f1": f, "support": s}


def classification_report(refs: Sequence[str], hyps: Sequence[Optional[str]],
                          classes: Sequence[str]) -> dict:
    """``{classes, per_class: {c: {precision, recall, f1, support}}, "macro avg", "weighted avg",
    accuracy, num_utts, correct}``; ``refs`` must be in ``classes``, ``hyps`` may hold None."""
    refs, classes = list(refs), list(classes)
    hyps = [_NO_PREDICTION if h is None else h for h in hyps]
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("classification_report: no utterances")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class in {classes}")
    unknown = sorted(set(refs) - set(classes))
    if unknown:
        raise ValueError(f"reference class {unknown[0]!r} is not one of {' '.join(classes)}")
    per = _prf(refs, hyps, classes)
    per_class = {c: {k: (int(v[i]) if k == "support" else float(v[i])) for k, v in per.items()}
                 for i, c in enumerate(classes)}
    present = [c for c in classes if per_class[c]["support"] > 0]
    averages = {}
    for name in AVERAGES:
        avg = _prf(refs, hyps, present, average=name.split()[0])
        averages[name] = {k: float(avg[k]) for k in ("precision", "recall", "f1")}
        averages[name]["support"] = sum(per_class[c]["support"] for c in present)
    correct = sum(r == h for r, h in zip(refs, hyps))
    return {"classes": classes, "per_class": per_class, **averages,
            "accuracy": float(accuracy_score(refs, hyps)), "num_utts": len(refs),
            "correct": correct}


def report_from_predictions(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                            classes: Sequence[str]) -> dict:
    """:func:`classification_report` of two ``utt -> code`` maps over the utterances of ``ref``."""
    return classification_report(list(ref.values()), [hyp[u] for u in ref], classes)


def as_percent(report: Mapping) -> dict:
    """A copy of a report with every rate (not the supports and counts) in percent."""
    def scale(d):
        return {k: (v if k == "support" else 100.0 * v) for k, v in d.items()}

    out = dict(report, accuracy=100.0 * report["accuracy"])
    out["per_class"] = {c: scale(v) for c, v in report["per_class"].items()}
    out.update({name: scale(report[name]) for name in AVERAGES})
    return out


def render_classification_report(report: Mapping, digits: int = 4) -> str:
    """The report as text in scikit-learn's ``classification_report`` layout, values as given."""
    headers = ["precision", "recall", "f1-score", "support"]
    names = list(report["per_class"]) + list(AVERAGES)
    width = max(len("weighted avg"), max(len(n) for n in names), digits)
    num_width = max(max(len(h) for h in headers) + 1, digits + 6)

    def row(name, d):
        vals = [f"{d[m]:.{digits}f}".rjust(num_width) for m in ("precision", "recall", "f1")]
        return name.rjust(width) + "".join(vals) + str(d["support"]).rjust(num_width)

    lines = [" " * width + "".join(h.rjust(num_width) for h in headers), ""]
    lines += [row(c, d) for c, d in report["per_class"].items()] + [""]
    acc = f"{report['accuracy']:.{digits}f}".rjust(num_width)
    lines.append("accuracy".rjust(width) + " " * (2 * num_width) + acc
                 + str(report["num_utts"]).rjust(num_width))
    lines += [row(name, report[name]) for name in AVERAGES]
    return "\n".join(lines) + "\n"
