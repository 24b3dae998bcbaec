"""The toolkit's one stratified random split: scikit-learn's ``train_test_split`` (RAVDESS
random protocol, IEMOCAP LOSO ``random`` validation). Same items, labels and seed, same
split; both parts keep the input order.
"""

import math
import numbers
from collections import Counter
from typing import List, Sequence, Tuple, Type, TypeVar, Union

from espnet_ser.data.datadir import DataDirError

T = TypeVar("T")


class SplitError(DataDirError):
    """A split that cannot be stratified (bad fraction or seed, a class too small)."""


def check_split_args(test_size: Union[float, int], seed: int, what: str = "split",
                     size_name: str = "the held-out fraction", seed_name: str = "the seed",
                     error: Type[DataDirError] = SplitError) -> None:
    """Raise ``error`` for a held-out fraction (float) outside (0, 1), a held-out count
    (int) below 1 or a seed that is not a non-negative integer."""
    if isinstance(test_size, bool) or not isinstance(test_size, (numbers.Integral, float)):
        raise error(f"{what}: {size_name} must be a fraction or a count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral) and test_size < 1:
        raise error(f"{what}: the held-out count must be at least 1, got {test_size!r}")
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise error(f"{what}: {size_name} must be between 0 and 1 (exclusive; strictly "
                    f"between 0 and 1), got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise error(f"{what}: {seed_name} must be a non-negative integer, got {seed!r}")


def stratified_split(items: Sequence[T], labels: Sequence[str], test_size: Union[float, int],
                     seed: int, what: str = "split", error: Type[DataDirError] = SplitError
                     ) -> Tuple[List[T], List[T]]:
    """``(kept, held_out)``: a seeded split of ``items`` stratified by ``labels``, holding out
    ``ceil(test_size * n)`` (a fraction) or ``test_size`` (an int) items. Raises ``error``
    naming ``what`` and the class when a part would miss a class."""
    check_split_args(test_size, seed, what, error=error)
    if len(items) != len(labels):
        raise error(f"{what}: {len(items)} items but {len(labels)} labels")
    if not items:
        raise error(f"{what}: nothing to split")
    counts = Counter(labels)
    small = sorted((n, c) for c, n in counts.items() if n < 2)
    if small:
        raise error(
            f"{what}: cannot stratify: " + ", ".join(
                f"class {c!r} has only {n} item" for n, c in small)
            + " (each class needs at least 2, one on each side)")
    n = len(items)
    n_held = test_size if isinstance(test_size, numbers.Integral) else math.ceil(test_size * n)
    if n_held < len(counts) or n - n_held < len(counts):
        rare = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
        raise error(
            f"{what}: cannot stratify {n} items of {len(counts)} classes with a held-out "
            f"part of {test_size!r} ({n_held} held out, {n - n_held} kept): each part "
            f"needs one item of every class (smallest: class {rare[0]!r} with {rare[1]})")
    from sklearn.model_selection import train_test_split

    try:
        kept_idx, held_idx = train_test_split(list(range(n)), test_size=test_size,
                                              stratify=list(labels), random_state=int(seed))
    except ValueError as e:
        raise error(f"{what}: {e}") from e
    return ([items[i] for i in sorted(kept_idx)], [items[i] for i in sorted(held_idx)])
