"""A prosody-only emotion baseline: utterance statistics + logistic regression.

Per utterance (16 kHz or any rate; 25 ms frames every 10 ms):

- F0 (``librosa.yin``, 60-500 Hz) in semitones re 100 Hz over voiced frames: mean, std,
  5/25/50/75/95th percentiles, range (95th - 5th), mean absolute frame-to-frame change.
  A frame is voiced when its RMS is within 35 dB of the utterance's loudest frame, its
  zero-crossing rate is below 0.25 and its normalised autocorrelation at the YIN period
  is above 0.5 (YIN itself never says "unvoiced").
- Energy: frame RMS in dB over speech frames (within 50 dB of the loudest): mean, std,
  10/50/90th percentiles.
- Rate: words per second (words of the transcript over the speech span, first to last
  frame within 35 dB of the loudest), voiced-frame ratio of the speech span, and the
  speech span in seconds.

The classifier is a standardised multinomial logistic regression (scikit-learn), fit on
the training set; missing F0 statistics (no voiced frame) are imputed with the training
median. No speaker normalisation is done: the baseline shows how far global prosody
statistics go, which on mini_emo is deliberately not far.
"""

import logging
import math
import multiprocessing
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

FRAME_SEC = 0.025
HOP_SEC = 0.010
F0_MIN, F0_MAX = 60.0, 500.0
VOICED_DB = 35.0
SPEECH_DB = 50.0
ZCR_MAX = 0.25
PERIODICITY_MIN = 0.5

FEATURE_NAMES: Tuple[str, ...] = (
    "f0_mean", "f0_std", "f0_p05", "f0_p25", "f0_p50", "f0_p75", "f0_p95", "f0_range",
    "f0_delta",
    "energy_mean", "energy_std", "energy_p10", "energy_p50", "energy_p90",
    "words_per_sec", "voiced_ratio", "speech_sec",
)


class ProsodyError(ValueError):
    """An utterance could not be analysed."""


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


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
        out[0:9] = [st.mean(), st.std(), *q, q[4] - q[0],
                    deltas.mean() if deltas.size else np.nan]
    e = rms_db[speech]
    out[9:14] = [e.mean(), e.std(), *np.percentile(e, [10, 50, 90])]
    in_span = np.zeros(len(rms_db), dtype=bool)
    if loud.size:
        in_span[loud[0]:loud[-1] + 1] = True
    out[14] = num_words / max(speech_sec, 1e-3)
    out[15] = float(voiced.sum()) / max(1, int(in_span[:n].sum()))
    out[16] = speech_sec
    return out


def _features_of(item: Tuple[str, str, str, int]) -> Tuple[str, np.ndarray]:
    from espnet_ser.features.fbank import AudioError, read_utterance

    utt, path, where, num_words = item
    try:
        # The toolkit's shared audio policy (espnet_ser.features.fbank): commands are
        # refused, faulty files and multi-channel audio are errors; any rate is used.
        x, sr = read_utterance(utt, path, where, fs=None)
    except AudioError as e:
        raise ProsodyError(str(e)) from None
    try:
        return utt, prosody_features(x.astype(np.float64), sr, num_words)
    except ProsodyError as e:
        raise ProsodyError(f"utterance {utt} ({path}): {e}") from None


def extract_features(
    wavs: Mapping[str, str], texts: Mapping[str, str], nj: int = 1, wav_scp: str = "wav.scp"
) -> Tuple[List[str], np.ndarray]:
    """Features of every utterance of ``wavs`` (sorted ids, matrix [utts, features]).

    ``wav_scp`` names the file ``wavs`` was read from (sorted), for error messages.
    """
    items = []
    for lineno, utt in enumerate(sorted(wavs), 1):
        path = wavs[utt]
        if utt not in texts:
            raise ProsodyError(f"utterance {utt}: no transcript (needed for words per second)")
        items.append((utt, path, f"{wav_scp}:{lineno}", len(texts[utt].split())))
    if nj > 1 and len(items) > 1:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["librosa", "espnet_ser.features.fbank", __name__])
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

    return make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(C=c, max_iter=5000, random_state=seed),
    )


def fit_predict(
    train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray, c: float = 1.0
) -> Tuple[List[str], object]:
    """Fit on train, predict test; return (predicted codes, fitted pipeline)."""
    if len(set(train_y)) < 2:
        raise ValueError(f"the training set has fewer than two emotions: {sorted(set(train_y))}")
    clf = make_classifier(c)
    clf.fit(train_x, list(train_y))
    return [str(p) for p in clf.predict(test_x)], clf


def emotion_metrics(ref: Mapping[str, str], hyp: Mapping[str, Optional[str]],
                    labels: Optional[Sequence[str]] = None) -> dict:
    """The toolkit's WA / UA / confusion metrics (espnet_ser.scoring.emotion)."""
    from espnet_ser.scoring.emotion import emotion_metrics as metrics

    return metrics(ref, hyp, labels=labels)


def run_baseline(train_dir, test_dir, nj: int = 1, c: float = 1.0) -> Dict:
    """Features, fit and prediction for two Kaldi data directories.

    Returns ``{"hyp": {utt: code}, "ref": {utt: code}, "train_acc": float, ...}``.
    """
    from pathlib import Path

    from espnet_ser.data.datadir import read_kaldi_map, validate_data_dir

    sets = {}
    for name, d in (("train", Path(train_dir)), ("test", Path(test_dir))):
        validate_data_dir(d, require=("wav.scp", "text", "utt2emo"))
        wavs = read_kaldi_map(d / "wav.scp")
        texts = read_kaldi_map(d / "text")
        emos = read_kaldi_map(d / "utt2emo")
        logging.info("%s: extracting prosody features of %d utterances", d, len(wavs))
        utts, x = extract_features(wavs, texts, nj=nj, wav_scp=str(d / "wav.scp"))
        sets[name] = (utts, x, [emos[u] for u in utts])
    tr_utts, tr_x, tr_y = sets["train"]
    te_utts, te_x, te_y = sets["test"]
    hyp, clf = fit_predict(tr_x, tr_y, te_x, c=c)
    train_acc = 100.0 * float(np.mean(np.asarray(clf.predict(tr_x)) == np.asarray(tr_y)))
    return {
        "ref": dict(zip(te_utts, te_y)),
        "hyp": dict(zip(te_utts, hyp)),
        "train_acc": train_acc,
        "labels": sorted(set(tr_y) | set(te_y)),
        "test_features": te_x,
        "test_utts": te_utts,
    }
