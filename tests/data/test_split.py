"""The toolkit's one stratified split (scikit-learn's train_test_split, seeded)."""

from collections import Counter

import pytest
from sklearn.model_selection import train_test_split

from espnet_ser.data import iemocap, ravdess
from espnet_ser.data.split import SplitError, stratified_split

# the class sizes of RAVDESS speech: 96 neutral, 192 of each other emotion
RAVDESS_LABELS = ["neu"] * 96 + [e for e in ("cal", "hap", "sad", "ang", "fea", "dis", "sur")
                                 for _ in range(192)]


def test_ravdess_class_counts_give_the_papers_split():
    items = [f"utt{i:04d}" for i in range(len(RAVDESS_LABELS))]
    kept, held = stratified_split(items, RAVDESS_LABELS, 0.2, ravdess.DEFAULT_SEED)
    assert (len(kept), len(held)) == (1152, 288)
    label = dict(zip(items, RAVDESS_LABELS))
    assert Counter(label[i] for i in held) == {"neu": 19, "cal": 39, "fea": 39, "sur": 39,
                                               "hap": 38, "sad": 38, "ang": 38, "dis": 38}
    # input order kept in both parts, nothing lost or shared
    assert kept == sorted(kept) and held == sorted(held)
    assert sorted(kept + held) == items


def test_it_is_sklearns_split_and_seeded():
    items = list("abcdefghijklmnopqrst")
    labels = ["x", "y"] * 10
    kept, held = stratified_split(items, labels, 0.25, 3)
    ref_kept, ref_held = train_test_split(items, test_size=0.25, stratify=labels, random_state=3)
    assert held == sorted(ref_held) and kept == sorted(ref_kept)
    assert stratified_split(items, labels, 0.25, 3) == (kept, held)
    assert any(stratified_split(items, labels, 0.25, s)[1] != held for s in range(4, 10))
    # an int is a number of held-out items
    assert len(stratified_split(items, labels, 4, 3)[1]) == 4


def test_a_class_too_small_is_named_with_its_count():
    with pytest.raises(SplitError, match=r"my split: cannot stratify: class 'sur' has only 1 "
                                         r"item"):
        stratified_split(list(range(11)), ["a"] * 10 + ["sur"], 0.2, 0, what="my split")
    with pytest.raises(SplitError, match=r"cannot stratify 6 items of 3 classes .*\(2 held out.*"
                                         r"smallest: class 'a' with 2"):
        stratified_split(list(range(6)), ["a", "a", "b", "b", "c", "c"], 0.2, 0)


@pytest.mark.parametrize("size, seed, msg", [
    (0.0, 0, "strictly between 0 and 1"), (1.0, 0, "strictly between 0 and 1"),
    (0, 0, "at least 1"), ("0.2", 0, "a fraction or a count"), (0.2, -1, "non-negative"),
    (0.2, 1.5, "non-negative integer"),
])
def test_bad_arguments(size, seed, msg):
    with pytest.raises(SplitError, match=msg):
        stratified_split(list(range(10)), ["a", "b"] * 5, size, seed)


def test_both_corpora_use_it(monkeypatch):
    from espnet_ser.data import split

    calls = []
    real = split.stratified_split

    def spy(*args, **kwargs):
        calls.append(kwargs.get("what"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ravdess, "stratified_split", spy)
    monkeypatch.setattr(iemocap, "_stratified_split", spy)
    utts = [ravdess.Utterance(f"actor01-{i:02d}", None, ravdess.RavdessFile(
        3, 1, e, "normal", 1, 1, 1)) for i, e in enumerate(["neu", "cal"] * 5)]
    ravdess.random_split(utts)
    iutts = [iemocap._Utt(1, f"Ses01F_impro01_F{i:03d}", e, (1.0, 1.0, 1.0), "x", None)
             for i, e in enumerate(["ang", "sad"] * 10)]
    iemocap.stratified_split(iutts, 0.1, 0)
    assert calls == ["RAVDESS random split", "leave-one-speaker-out random validation set"]
