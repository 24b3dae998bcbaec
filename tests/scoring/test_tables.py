"""Table formatting shared by result.txt and RESULTS.md."""

import pytest

from espnet_ser.scoring import tables
from espnet_ser.scoring.wer import WerCounts


def test_fmt_rate():
    assert tables.fmt_rate(12.345) == "12.3"
    assert tables.fmt_rate(None) == "-"
    assert tables.fmt_rate(100.0) == "100.0"


def test_sclite_cells_and_markdown():
    c = WerCounts(snt=2, wrd=10, corr=8, sub=1, dele=1, ins=2, serr=1)
    assert tables.sclite_cells(c) == ["2", "10", "80.0", "10.0", "10.0", "20.0", "40.0", "50.0"]
    md = tables.sclite_markdown_table([("decode/test", c)])
    assert md == (
        "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "|decode/test|2|10|80.0|10.0|10.0|20.0|40.0|50.0|\n"
    )


def test_markdown_row_width_checked():
    with pytest.raises(ValueError, match="2 cells"):
        tables.markdown_table(["a", "b", "c"], [["1", "2"]])


def test_text_table_layout():
    text = tables.text_table(["name", "n"], [["ab", "1"], ["Sum", "10"]], title="T",
                             separators=[1])
    assert text.splitlines() == [
        ",-----------.",
        "|     T     |",
        "|------+----|",
        "| name |  n |",
        "|======+====|",
        "| ab   |  1 |",
        "|------+----|",
        "| Sum  | 10 |",
        "`-----------'",
    ]


def test_text_table_long_title_fits():
    text = tables.text_table(["a", "b"], [["1", "2"]], title="a rather long title")
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1  # a straight box


def test_confusion_cells():
    conf = {"labels": ["ang", "sad"], "columns": ["ang", "sad", "none"],
            "matrix": [[3, 0, 1], [0, 0, 0]]}
    header, rows = tables.confusion_cells(conf)
    assert header == ["ref \\ hyp", "ang", "sad", "none", "total"]
    assert rows == [["ang", "3", "0", "1", "4"], ["sad", "0", "0", "0", "0"]]
    header, rows = tables.confusion_cells(conf, normalise=True)
    assert rows == [["ang", "75.0", "0.0", "25.0"], ["sad", "-", "-", "-"]]
    with pytest.raises(ValueError, match="shape"):
        tables.confusion_cells({"labels": ["a"], "columns": ["a"], "matrix": [[1, 2]]})


def test_alignment_lines():
    steps = [("C", "the", "the"), ("S", "cat", "bat"), ("D", "<ang>", None), ("I", None, "x")]
    assert tables.alignment_lines(steps) == [
        "REF:  the cat <ang> ***",
        "HYP:  the bat ***   x",
        "Eval:     S   D     I",
    ]
