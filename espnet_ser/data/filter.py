"""Length filtering of the train and valid sets by their shape files (ESPnet's samplers
never see an utterance left out of them); ``filtered`` lists ``<utt> <reason>``. The test
set is never filtered: every test utterance is scored.
"""

import logging
from collections import Counter
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from espnet_ser.utils.io import PathLike, atomic_write_text

SET_ROLES = ("train", "valid", "test")
# (kernel, stride) of each Conv2d of ESPnet's Conv2dSubsampling{2,4,6,8}
_SUBSAMPLING_LAYERS = {1: (), 2: ((3, 2), (3, 1)), 4: ((3, 2), (3, 2)), 6: ((3, 2), (5, 3)),
                       8: ((3, 2), (3, 2), (3, 2))}
SUBSAMPLING_FACTORS = tuple(_SUBSAMPLING_LAYERS)


class FilterError(ValueError):
    """Bad shape file or arguments, or a request to filter the test set."""


def subsampled_frames(frames: int, subsampling: int) -> int:
    """Frames left after ESPnet's Conv2dSubsampling{2,4,6,8} (1: no subsampling): each
    ``Conv2d(kernel k, stride s)`` without padding maps T to (T - k) // s + 1."""
    if subsampling not in _SUBSAMPLING_LAYERS:
        raise FilterError(f"subsampling must be one of {SUBSAMPLING_FACTORS}, got {subsampling}")
    t = int(frames)
    for k, stride in _SUBSAMPLING_LAYERS[subsampling]:
        t = (t - k) // stride + 1
    return t


def read_shape_file(path: PathLike) -> Dict[str, Tuple[str, int]]:
    """Read an ESPnet shape file into ``{utt: (line value, first dimension)}``."""
    path = Path(path)
    if not path.is_file():
        raise FilterError(f"{path}: no such file")
    out: Dict[str, Tuple[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            where = f"{path}:{lineno}"
            if len(parts) != 2:
                raise FilterError(f"{where}: expected '<utt> <length>,<dim>'")
            utt, value = parts
            try:
                dims = [int(v) for v in value.split(",")]
            except ValueError:
                raise FilterError(f"{where}: utterance {utt}: bad shape {value!r}") from None
            if utt in out:
                raise FilterError(f"{where}: duplicate utterance {utt}")
            out[utt] = (value, dims[0])
    return out


def filter_reasons(feats_shape: Mapping[str, int], text_shape: Mapping[str, int],
                   min_frames: Optional[int] = None, max_frames: Optional[int] = None,
                   subsampling: int = 4) -> Dict[str, str]:
    """``{utt: reason}`` of the utterances to drop, given frames and token counts."""
    subsampled_frames(1, subsampling)  # validates the factor
    reasons: Dict[str, str] = {}
    for utt in sorted(set(feats_shape) | set(text_shape)):
        if utt not in text_shape:
            reasons[utt] = "no_text (not in the text shape file)"
            continue
        if utt not in feats_shape:
            reasons[utt] = "no_features (not in the feature shape file)"
            continue
        frames, tokens = feats_shape[utt], text_shape[utt]
        if tokens == 0:
            reasons[utt] = "empty_text (no target token)"
        elif min_frames is not None and frames < min_frames:
            reasons[utt] = f"too_short ({frames} frames < min_frames {min_frames})"
        elif max_frames is not None and frames > max_frames:
            reasons[utt] = f"too_long ({frames} frames > max_frames {max_frames})"
        else:
            sub = subsampled_frames(frames, subsampling)
            if sub < tokens:
                reasons[utt] = (
                    f"ctc_too_short ({frames} frames -> {sub} after subsampling by "
                    f"{subsampling} < {tokens} tokens)")
    return reasons


def filter_shape_files(feats_shape: PathLike, text_shape: PathLike, out_dir: PathLike,
                       min_frames: Optional[int] = None, max_frames: Optional[int] = None,
                       subsampling: int = 4, set_role: str = "train") -> Dict[str, str]:
    """Write the shape files (same names) without the filtered utterances and
    ``out_dir/filtered``; return ``{utt: reason}``. ``set_role="test"`` is refused."""
    if set_role not in SET_ROLES:
        raise FilterError(f"set_role must be one of {', '.join(SET_ROLES)}, got {set_role!r}")
    if set_role == "test":
        raise FilterError("the test set is never filtered: every test utterance is scored")
    if min_frames is not None and max_frames is not None and min_frames > max_frames:
        raise FilterError(f"min_frames {min_frames} > max_frames {max_frames}")
    feats_shape, text_shape, out_dir = Path(feats_shape), Path(text_shape), Path(out_dir)
    if feats_shape.name == text_shape.name:
        raise FilterError(f"both shape files are named {feats_shape.name}; cannot write both")
    feats = read_shape_file(feats_shape)
    text = read_shape_file(text_shape)
    reasons = filter_reasons({u: v[1] for u, v in feats.items()},
                             {u: v[1] for u, v in text.items()}, min_frames, max_frames,
                             subsampling)
    kept: List[str] = [u for u in feats if u not in reasons]
    if not kept:
        raise FilterError(
            f"every utterance of {feats_shape} would be filtered ({len(reasons)}); "
            "check --min_frames / --max_frames")
    for utt, reason in reasons.items():
        logging.info(f"filtered {utt}: {reason}")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / feats_shape.name, "".join(f"{u} {feats[u][0]}\n" for u in kept))
    atomic_write_text(out_dir / text_shape.name, "".join(f"{u} {text[u][0]}\n" for u in kept))
    atomic_write_text(out_dir / "filtered", "".join(f"{u} {r}\n" for u, r in reasons.items()))
    counts = Counter(r.split()[0] for r in reasons.values())
    logging.info(
        f"{set_role}: kept {len(kept)} of {len(set(feats) | set(text))} utterances; filtered "
        f"{len(reasons)} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'}); "
        f"list: {out_dir / 'filtered'}")
    return reasons
