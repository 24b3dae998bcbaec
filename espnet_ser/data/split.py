"""The toolkit's one stratified random split: scikit-learn's ``train_test_split``.

Every recipe that holds out a random part of a set stratified by emotion (the RAVDESS
random 80:20 protocol, the IEMOCAP leave-one-speaker-out ``random`` validation set) calls
:func:`stratified_split`, which is ``train_test_split(range(n), test_size=...,
stratify=labels, random_state=seed)``: scikit-learn decides how many items of each class
go to the held-out part (its ``_approximate_mode`` allocation, ties broken by the seed)
and which ones. The same items in the same order, the same labels and the same seed
always give the same split. Both parts keep the input order (callers pass Kaldi-sorted
items, so both parts stay sorted).
"""

import math
import numbers
from collections import Counter
from typing import List, Sequence, Tuple, TypeVar, Union

from espnet_ser.data.datadir import DataDirError

T = TypeVar("T")


class SplitError(DataDirError):
    """A split that cannot be stratified (bad fraction or seed, a class too small)."""


def check_split_args(test_size: Union[float, int], seed: int, what: str = "split") -> None:
    """Refuse a held-out fraction outside (0, 1) or a held-out count below 1 (``test_size``
    as scikit-learn reads it: a float is a fraction, an int a number of items) and a seed
    that is not a non-negative integer."""
    if isinstance(test_size, bool) or not isinstance(test_size, (numbers.Integral, float)):
        raise SplitError(f"{what}: the held-out part must be a fraction or a count, "
                         f"got {test_size!r}")
    if isinstance(test_size, numbers.Integral) and test_size < 1:
        raise SplitError(f"{what}: the held-out count must be at least 1, got {test_size!r}")
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise SplitError(f"{what}: the held-out fraction must lie strictly between 0 and 1, "
                         f"got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SplitError(f"{what}: the seed must be a non-negative integer, got {seed!r}")


def stratified_split(items: Sequence[T], labels: Sequence[str], test_size: Union[float, int],
                     seed: int, what: str = "split") -> Tuple[List[T], List[T]]:
    """Return ``(kept, held_out)``: a seeded split of ``items`` stratified by ``labels``.

    ``test_size`` is the held-out fraction (scikit-learn rounds the held-out total up:
    ``ceil(test_size * n)``) or, an int, the number of held-out items. Raises SplitError, naming ``what``, the class and its count,
    when a class has fewer than 2 items (it cannot be on both sides), and when the
    held-out or the kept part would have fewer items than there are classes.
    """
    check_split_args(test_size, seed, what)
    if len(items) != len(labels):
        raise SplitError(f"{what}: {len(items)} items but {len(labels)} labels")
    if not items:
        raise SplitError(f"{what}: nothing to split")
    counts = Counter(labels)
    small = sorted((n, c) for c, n in counts.items() if n < 2)
    if small:
        raise SplitError(
            f"{what}: cannot stratify: " + ", ".join(
                f"class {c!r} has only {n} item" for n, c in small)
            + " (each class needs at least 2, one on each side)")
    n = len(items)
    n_held = test_size if isinstance(test_size, numbers.Integral) else math.ceil(test_size * n)
    if n_held < len(counts) or n - n_held < len(counts):
        rare = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
        raise SplitError(
            f"{what}: cannot stratify {n} items of {len(counts)} classes with a held-out "
            f"part of {test_size!r} ({n_held} held out, {n - n_held} kept): each part "
            f"needs one item of every class (smallest: class {rare[0]!r} with {rare[1]})")
    from sklearn.model_selection import train_test_split

    try:
        kept_idx, held_idx = train_test_split(list(range(n)), test_size=test_size,
                                              stratify=list(labels), random_state=int(seed))
    except ValueError as e:
        raise SplitError(f"{what}: {e}") from e
    return ([items[i] for i in sorted(kept_idx)], [items[i] for i in sorted(held_idx)])
