"""Classification report from the confusion counts, checked against hand-computed numbers."""

import pytest

from espnet_ser.scoring.classification import (
    as_percent,
    classification_report,
    render_classification_report,
)

CLASSES = ["ang", "hap", "neu", "sad"]
# utt: (ref, hyp); u5 has no prediction (a failed decode)
PAIRS = [("ang", "ang"), ("ang", "hap"), ("hap", "hap"), ("neu", "neu"), ("neu", None),
         ("neu", "sad"), ("sad", "sad"), ("sad", "neu")]
REFS = [r for r, _ in PAIRS]
HYPS = [h for _, h in PAIRS]


def test_hand_computed():
    rep = classification_report(REFS, HYPS, CLASSES)
    pc = rep["per_class"]
    # ang: 1 of 2 found, the only "ang" prediction is right
    assert pc["ang"] == pytest.approx(dict(precision=1.0, recall=0.5, f1=2 / 3, support=2))
    # hap: found, but u2 (ang) was also called hap
    assert pc["hap"] == pytest.approx(dict(precision=0.5, recall=1.0, f1=2 / 3, support=1))
    # neu: 1 of 3 (u5 none does not count as a prediction of any class); u8 called neu
    assert pc["neu"] == pytest.approx(dict(precision=0.5, recall=1 / 3, f1=0.4, support=3))
    assert pc["sad"] == pytest.approx(dict(precision=0.5, recall=0.5, f1=0.5, support=2))
    assert rep["accuracy"] == pytest.approx(0.5) and rep["correct"] == 4 and rep["num_utts"] == 8
    assert rep["macro avg"] == pytest.approx(
        dict(precision=0.625, recall=(0.5 + 1 + 1 / 3 + 0.5) / 4,
             f1=(2 / 3 + 2 / 3 + 0.4 + 0.5) / 4, support=8))
    assert rep["weighted avg"] == pytest.approx(
        dict(precision=0.625, recall=0.5, f1=4.2 / 8, support=8))


def test_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rep = classification_report(REFS, HYPS, CLASSES)
    hyps = ["none" if h is None else h for h in HYPS]
    sk = metrics.classification_report(REFS, hyps, labels=CLASSES, output_dict=True,
                                       zero_division=0)
    for c in CLASSES:
        assert rep["per_class"][c]["precision"] == pytest.approx(sk[c]["precision"])
        assert rep["per_class"][c]["recall"] == pytest.approx(sk[c]["recall"])
        assert rep["per_class"][c]["f1"] == pytest.approx(sk[c]["f1-score"])
    for avg in ("macro avg", "weighted avg"):
        assert rep[avg]["f1"] == pytest.approx(sk[avg]["f1-score"])


def test_class_without_reference_is_shown_but_not_averaged():
    # "fea" is listed and predicted once, but never in the reference
    rep = classification_report(["ang", "ang", "hap"], ["ang", "fea", "hap"],
                                ["ang", "hap", "fea"])
    assert rep["per_class"]["fea"] == dict(precision=0.0, recall=0.0, f1=0.0, support=0)
    # macro over ang and hap only: recall mean(0.5, 1) equals UA
    assert rep["macro avg"]["recall"] == pytest.approx(0.75)
    assert rep["macro avg"]["precision"] == pytest.approx(1.0)
    assert rep["per_class"]["ang"]["f1"] == pytest.approx(2 / 3)


def test_errors():
    with pytest.raises(ValueError, match="not one of"):
        classification_report(["xxx"], ["ang"], CLASSES)
    with pytest.raises(ValueError, match="2 references but 1"):
        classification_report(["ang", "hap"], ["ang"], CLASSES)
    with pytest.raises(ValueError, match="no utterances"):
        classification_report([], [], CLASSES)


def test_render_like_sklearn():
    text = render_classification_report(classification_report(REFS, HYPS, CLASSES))
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["ang", "1.0000", "0.5000", "0.6667", "2"]
    assert lines[4].split() == ["neu", "0.5000", "0.3333", "0.4000", "3"]
    assert lines[7].split() == ["accuracy", "0.5000", "8"]
    assert lines[8].split() == ["macro", "avg", "0.6250", "0.5833", "0.5583", "8"]
    assert lines[9].split() == ["weighted", "avg", "0.6250", "0.5000", "0.5250", "8"]
    # columns line up: every number ends at the same offsets as the header words
    assert lines[2].index("0.6667") + 6 == lines[0].index("f1-score") + 8
    pct = render_classification_report(as_percent(classification_report(REFS, HYPS, CLASSES)),
                                       digits=2)
    assert pct.splitlines()[2].split() == ["ang", "100.00", "50.00", "66.67", "2"]
