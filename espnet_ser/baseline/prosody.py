"""A prosody-only emotion baseline: utterance statistics + standardised logistic regression.

Per utterance (25 ms frames every 10 ms): F0 statistics (``librosa.yin``, semitones re 100 Hz) over
voiced frames, energy (dB) statistics over speech frames, words per second and voiced ratio of the
speech span; training medians impute missing F0; no speaker normalisation.
"""

import logging
import math
import multiprocessing
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

FRAME_SEC, HOP_SEC = 0.025, 0.010
F0_MIN, F0_MAX = 60.0, 500.0
VOICED_DB, SPEECH_DB = 35.0, 50.0  # below the loudest frame: voiced candidates, speech
ZCR_MAX, PERIODICITY_MIN = 0.25, 0.5

FEATURE_NAMES: Tuple[str, ...] = (
    "f0_mean", "f0_std", "f0_p05", "f0_p25", "f0_p50", "f0_p75", "f0_p95", "f0_range", "f0_delta",
    "energy_mean", "energy_std", "energy_p10", "energy_p50", "energy_p90",
    "words_per_sec", "voiced_ratio", "speech_sec")


class ProsodyError(ValueError):
    """An utterance could not be analysed."""


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    x = np.pad(x, (0, max(0, frame - len(x))))
    return np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]


def prosody_features(x: np.ndarray, sr: int, num_words: int) -> np.ndarray:
    """The FEATURE_NAMES vector of one utterance (NaN where undefined)."""
    import librosa

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ProsodyError(f"expected mono audio, got shape {x.shape}")
    if len(x) < int(0.1 * sr) or not np.any(x):
        raise ProsodyError("audio shorter than 0.1 s or silent")
    frame, hop = int(round(FRAME_SEC * sr)), int(round(HOP_SEC * sr))
    fr = _frames(x, frame, hop)
    rms_db = 10 * np.log10(np.mean(fr ** 2, axis=1) + 1e-12)
    top = float(np.max(rms_db))
    speech = rms_db > top - SPEECH_DB
    loud = np.flatnonzero(rms_db > top - VOICED_DB)
    span = (loud[-1] - loud[0] + 1) if loud.size else 1
    speech_sec = span * HOP_SEC

    # YIN needs a window of at least two periods of the lowest F0
    yin_len = 1 << int(math.ceil(math.log2(2.2 * sr / F0_MIN)))
    xp = np.pad(x, (0, max(0, yin_len - len(x))))
    f0 = librosa.yin(xp.astype(np.float32), fmin=F0_MIN, fmax=F0_MAX, sr=sr,
                     frame_length=yin_len, hop_length=hop, center=False)
    # YIN frame i starts where our frame i starts (x[i*hop:]); its window is longer
    n = min(len(f0), len(fr))
    zcr = np.mean(np.abs(np.diff(np.sign(fr[:n]), axis=1)) > 0, axis=1)
    voiced = np.zeros(n, dtype=bool)
    for i in range(n):
        if rms_db[i] < top - VOICED_DB or zcr[i] > ZCR_MAX:
            continue
        lag = int(round(sr / f0[i]))
        seg = x[i * hop: i * hop + yin_len]
        if lag >= len(seg) - 1:
            continue
        a, b = seg[:-lag], seg[lag:]
        den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
        voiced[i] = den > 0 and float(np.dot(a, b)) / den > PERIODICITY_MIN

    out = np.full(len(FEATURE_NAMES), np.nan)
    if voiced.any():
        st = 12 * np.log2(f0[:n][voiced] / 100.0)
        q = np.percentile(st, [5, 25, 50, 75, 95])
        vi = np.flatnonzero(voiced)
        consecutive = np.diff(vi) == 1
        st_all = 12 * np.log2(f0[:n] / 100.0)
        deltas = np.abs(np.diff(st_all[vi]))[consecutive]
        out[0:9] = [st.mean(), st.std(), *q, q[4] - q[0], deltas.mean() if deltas.size else np.nan]
    e = rms_db[speech]
    out[9:14] = [e.mean(), e.std(), *np.percentile(e, [10, 50, 90])]
    frames_in_span = max(0, min(loud[-1] + 1, n) - loud[0]) if loud.size else 0
    out[14] = num_words / max(speech_sec, 1e-3)
    out[15] = float(voiced.sum()) / max(1, int(frames_in_span))
    out[16] = speech_sec
    return out


def _features_of(item: Tuple[str, str, str, int]) -> Tuple[str, np.ndarray]:
    from espnet_ser.features.audio import AudioError, read_utterance

    utt, path, where, num_words = item
    try:
        x, sr = read_utterance(utt, path, where, fs=None)
    except AudioError as e:
        raise ProsodyError(str(e)) from None
    try:
        return utt, prosody_features(x.astype(np.float64), sr, num_words)
    except ProsodyError as e:
        raise ProsodyError(f"utterance {utt} ({path}): {e}") from None


def extract_features(wavs: Mapping[str, str], texts: Mapping[str, str], nj: int = 1,
                     wav_scp: str = "wav.scp") -> Tuple[List[str], np.ndarray]:
    """Sorted ids and features [utts, features] of ``wavs`` (read from the sorted ``wav_scp``)."""
    items = []
    for lineno, utt in enumerate(sorted(wavs), 1):
        if utt not in texts:
            raise ProsodyError(f"utterance {utt}: no transcript (needed for words per second)")
        items.append((utt, wavs[utt], f"{wav_scp}:{lineno}", len(texts[utt].split())))
    if nj > 1 and len(items) > 1:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["librosa", "espnet_ser.features.audio", __name__])
        else:
            ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(nj) as pool:
            results = pool.map(_features_of, items, chunksize=max(1, len(items) // (4 * nj)))
    else:
        results = [_features_of(it) for it in items]
    return [u for u, _ in results], np.stack([f for _, f in results])


def make_classifier(c: float = 1.0, seed: int = 0):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LogisticRegression(C=c, max_iter=5000, random_state=seed))


def fit_predict(train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray, c: float = 1.0
                ) -> Tuple[List[str], object]:
    """Fit on train, predict test; return (predicted codes, fitted pipeline)."""
    if len(set(train_y)) < 2:
        raise ValueError(f"the training set has fewer than two emotions: {sorted(set(train_y))}")
    clf = make_classifier(c)
    clf.fit(train_x, list(train_y))
    return [str(p) for p in clf.predict(test_x)], clf


def run_baseline(train_dir, test_dir, nj: int = 1, c: float = 1.0) -> Dict:
    """Fit on ``train_dir``, predict ``test_dir`` (Kaldi data directories): ``{ref, hyp: {utt: code},
    train_acc, labels, test_features, test_utts}``."""
    from espnet_ser.data.datadir import validate_data_dir
    from espnet_ser.utils.io import read_kaldi_map

    sets = {}
    for name, d in (("train", Path(train_dir)), ("test", Path(test_dir))):
        validate_data_dir(d, require=("wav.scp", "text", "utt2emo"))
        wavs, texts, emos = (read_kaldi_map(d / f) for f in ("wav.scp", "text", "utt2emo"))
        logging.info("%s: extracting prosody features of %d utterances", d, len(wavs))
        utts, x = extract_features(wavs, texts, nj=nj, wav_scp=str(d / "wav.scp"))
        sets[name] = (utts, x, [emos[u] for u in utts])
    tr_utts, tr_x, tr_y = sets["train"]
    te_utts, te_x, te_y = sets["test"]
    hyp, clf = fit_predict(tr_x, tr_y, te_x, c=c)
    train_acc = 100.0 * float(np.mean(np.asarray(clf.predict(tr_x)) == np.asarray(tr_y)))
    return {"ref": dict(zip(te_utts, te_y)), "hyp": dict(zip(te_utts, hyp)),
            "train_acc": train_acc, "labels": sorted(set(tr_y) | set(te_y)),
            "test_features": te_x, "test_utts": te_utts}
