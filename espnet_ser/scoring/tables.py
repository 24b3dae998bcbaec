"""Tables of ``result.txt`` (text, sclite style) and ``RESULTS.md`` (markdown, ESPnet style); ``-``
marks an undefined value."""

from typing import List, Mapping, Optional, Sequence

from espnet_ser.scoring.wer import AlignStep, WerCounts

SCLITE_HEADER = ["Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]


def fmt_rate(value: Optional[float], digits: int = 1) -> str:
    """A percentage with ``digits`` decimals, ``-`` for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_count(value: Optional[int]) -> str:
    return "-" if value is None else str(int(value))


def sclite_cells(counts: WerCounts) -> List[str]:
    """The eight cells of an sclite row: Snt Wrd Corr Sub Del Ins Err S.Err."""
    row = counts.row()
    return [fmt_count(row["Snt"]), fmt_count(row["Wrd"])] + [fmt_rate(row[k]) for k in SCLITE_HEADER[2:]]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ESPnet-style markdown table: ``|a|b|`` lines, a ``|---|`` rule, no padding."""
    _check_widths(header, rows)
    lines = ["|" + "|".join(header) + "|", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["|" + "|".join(str(c) for c in row) + "|" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: Optional[str] = None,
               separators: Sequence[int] = ()) -> str:
    """A boxed fixed-width table like sclite's ``.sys`` report (first column left-aligned), a rule
    before each row index in ``separators`` (e.g. a ``Sum/Avg`` row)."""
    _check_widths(header, rows)
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    if title:  # a long title widens the last column to fit inside the box
        widths[-1] += max(0, len(title) - sum(widths) - 3 * (len(widths) - 1))

    def line(r: Sequence[str]) -> str:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "+".join("-" * (w + 2) for w in widths) + "|"
    dashes = "-" * (len(rule) - 2)
    out = ["," + dashes + "."] + (["| " + title.center(len(rule) - 4) + " |", rule] if title else [])
    out += [line(cells[0]), rule.replace("-", "=")]
    for k, r in enumerate(cells[1:]):
        if k in separators and k > 0:
            out.append(rule)
        out.append(line(r))
    out.append("`" + dashes + "'")
    return "\n".join(out) + "\n"


def _check_widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"table row {list(r)} has {len(r)} cells, header has {len(header)}")


def sclite_text_table(rows: Sequence[tuple], title: Optional[str] = None, first: str = "SPKR",
                      sum_last: bool = True) -> str:
    """Text table of ``(name, WerCounts)`` rows; a rule before the last row if ``sum_last``."""
    body = [[name] + sclite_cells(c) for name, c in rows]
    seps = [len(body) - 1] if sum_last and len(body) > 1 else []
    return text_table([first] + SCLITE_HEADER, body, title=title, separators=seps)


def sclite_markdown_table(rows: Sequence[tuple], first: str = "dataset") -> str:
    """``|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|`` from ``(name, WerCounts)`` rows."""
    return markdown_table([first] + SCLITE_HEADER, [[n] + sclite_cells(c) for n, c in rows])


def confusion_cells(confusion: Mapping, normalise: bool = False) -> tuple:
    """(header, rows) of a confusion matrix (rows = reference): counts and a ``total`` column, or
    with ``normalise`` percent of the row."""
    labels, columns, matrix = list(confusion["labels"]), list(confusion["columns"]), confusion["matrix"]
    if len(matrix) != len(labels) or any(len(r) != len(columns) for r in matrix):
        raise ValueError("confusion matrix shape does not match its labels and columns")
    header = ["ref \\ hyp"] + columns + ([] if normalise else ["total"])
    rows = []
    for label, row in zip(labels, matrix):
        n = sum(row)
        if normalise:
            rows.append([label] + [fmt_rate(100.0 * v / n if n else None) for v in row])
        else:
            rows.append([label] + [str(v) for v in row] + [str(n)])
    return header, rows


def confusion_text_tables(confusion: Mapping) -> List[str]:
    """Text tables of a confusion matrix: counts, then percent of row."""
    return [text_table(*confusion_cells(confusion), title="Confusion matrix, counts"),
            text_table(*confusion_cells(confusion, normalise=True),
                       title="Confusion matrix, % of row")]


def alignment_lines(steps: Sequence[AlignStep]) -> List[str]:
    """sclite-like ``REF:`` / ``HYP:`` / ``Eval:`` lines; ``***`` marks a missing word."""
    refs, hyps, evals = [], [], []
    for op, r, h in steps:
        r = "***" if r is None else r
        h = "***" if h is None else h
        w = max(len(r), len(h), 1)
        refs.append(r.ljust(w))
        hyps.append(h.ljust(w))
        evals.append(("" if op == "C" else op).ljust(w))
    return [(head + " ".join(cells)).rstrip()
            for head, cells in (("REF:  ", refs), ("HYP:  ", hyps), ("Eval: ", evals))]
