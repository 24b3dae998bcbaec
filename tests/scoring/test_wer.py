"""Word error counts: hand-aligned examples."""

import pytest

from espnet_ser.scoring.wer import (
    WerCounts,
    align_words,
    corpus_counts,
    pool,
    pooled_wer,
    utterance_counts,
)


def w(text):
    return text.split()


def test_substitution():
    c = utterance_counts(w("a b c"), w("a x c"))
    assert (c.snt, c.wrd, c.corr, c.sub, c.dele, c.ins, c.err, c.serr) == (1, 3, 2, 1, 0, 0, 1, 1)
    assert c.wer == pytest.approx(100.0 / 3)


def test_deletion():
    c = utterance_counts(w("a b c"), w("a c"))
    assert (c.wrd, c.corr, c.sub, c.dele, c.ins) == (3, 2, 0, 1, 0)


def test_insertion():
    c = utterance_counts(w("a b"), w("a x b"))
    assert (c.wrd, c.corr, c.sub, c.dele, c.ins, c.err) == (2, 2, 0, 0, 1, 1)
    assert c.wer == pytest.approx(50.0)


def test_correct_utterance_has_no_sentence_error():
    c = utterance_counts(w("a b"), w("a b"))
    assert (c.corr, c.err, c.serr) == (2, 0, 0)
    assert c.wer == 0.0


def test_empty_hypothesis_deletes_everything():
    c = utterance_counts(w("a b"), [])
    assert (c.wrd, c.dele, c.err, c.serr) == (2, 2, 2, 1)


def test_empty_reference_has_undefined_wer():
    c = utterance_counts([], w("a"))
    assert (c.wrd, c.ins, c.err) == (0, 1, 1)
    assert c.wer is None
    assert c.row()["Err"] is None


def test_alignment_steps():
    steps = align_words(w("the cat sat <ang>"), w("<unk> the bat sat"))
    # I(<unk>) C(the) S(cat->bat) C(sat) D(<ang>)
    assert steps == [
        ("I", None, "<unk>"),
        ("C", "the", "the"),
        ("S", "cat", "bat"),
        ("C", "sat", "sat"),
        ("D", "<ang>", None),
    ]


def test_pooled_not_averaged_per_utterance():
    per = corpus_counts({"u1": w("a"), "u2": w("b c d e f g h i j")},
                        {"u1": w("x"), "u2": w("b c d e f g h i j")})
    # u1: 1 error / 1 word (100 %), u2: 0 / 9. Pooled 1/10 = 10 %, the per-utterance mean is 50 %.
    assert pooled_wer(per) == pytest.approx(10.0)
    assert pooled_wer(per, ["u2"]) == 0.0
    total = pool(per.values())
    assert (total.snt, total.wrd, total.err, total.serr) == (2, 10, 1, 1)


def test_corpus_counts_names_missing_hypothesis():
    with pytest.raises(KeyError, match="u2"):
        corpus_counts({"u1": ["a"], "u2": ["b"]}, {"u1": ["a"]})


def test_row_percentages():
    c = WerCounts(snt=2, wrd=10, corr=8, sub=1, dele=1, ins=2, serr=1)
    assert c.row() == {
        "Snt": 2, "Wrd": 10, "Corr": 80.0, "Sub": 10.0, "Del": 10.0, "Ins": 20.0,
        "Err": 40.0, "S.Err": 50.0,
    }


def test_dict_round_trip_and_checks():
    c = WerCounts(snt=2, wrd=10, corr=8, sub=1, dele=1, ins=2, serr=1)
    d = c.to_dict()
    assert d == {"snt": 2, "wrd": 10, "corr": 8, "sub": 1, "del": 1, "ins": 2, "err": 4, "serr": 1}
    assert WerCounts.from_dict(d) == c
    with pytest.raises(ValueError, match="err=5"):
        WerCounts.from_dict(dict(d, err=5))
    with pytest.raises(ValueError, match="wrd=11"):
        WerCounts.from_dict(dict(d, wrd=11))
    with pytest.raises(ValueError, match="lack ins"):
        WerCounts.from_dict({k: v for k, v in d.items() if k != "ins"})


def test_words_with_spaces_are_rejected():
    with pytest.raises(ValueError, match="white space"):
        utterance_counts(["a b"], ["a"])
