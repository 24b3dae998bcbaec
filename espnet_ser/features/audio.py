"""Reading and resampling audio (soundfile + scipy), the one reader of wav.scp values."""

import io
import math
import os
import struct
from typing import Optional, Tuple

import kaldiio
import numpy as np
import soundfile

from espnet_ser.features.extractor import FeatureError


class AudioError(FeatureError):
    """An utterance's audio cannot be used. ``reason`` (e.g. ``missing``, ``truncated``) tags
    faults of the audio itself, which ``on_error="reject"`` may skip; None for policy errors."""

    def __init__(self, message: str, reason: Optional[str] = None):
        super().__init__(message)
        self.reason = reason


def _declared_wav_frames(f) -> Optional[int]:
    """Frames a RIFF/WAVE header declares (data size / block align), else None (another
    format, or a size of 0 / 0xFFFFFFFF as streaming tools write). ``f`` is left at 0."""
    try:
        f.seek(0)
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size)
                if len(fmt) < 14:
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
                if size % 2:
                    f.seek(1, io.SEEK_CUR)
            elif cid == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                f.seek(size + size % 2, io.SEEK_CUR)
    finally:
        f.seek(0)


def read_audio(entry: str, allow_commands: bool = False) -> Tuple[np.ndarray, int]:
    """Float32 samples (samples, channels) and the rate of a wav.scp value (a path or
    ``cmd |``); AudioError with the reason, without utterance context."""
    entry = entry.strip()
    if entry.endswith("|"):
        if not allow_commands:
            raise AudioError(f"the wav.scp value is a shell command ({entry}); commands are not "
                             "run unless allowed explicitly (allow_commands=True, "
                             "--allow_commands true)")
        f = kaldiio.utils.open_like_kaldi(entry, "rb")
        try:
            data = f.read()
        finally:
            status = f.close()
        if status:
            raise AudioError(f"command exited with status {status >> 8}: {entry}",
                             reason="command_failed")
        source = io.BytesIO(data)
    else:
        if not os.path.isfile(entry):
            raise AudioError(f"no such file {entry}", reason="missing")
        try:
            source = open(entry, "rb")
        except OSError as e:
            raise AudioError(f"cannot open {entry}: {e}", reason="unreadable") from e
    with source:
        try:
            with soundfile.SoundFile(source) as sf:
                rate = int(sf.samplerate)
                wave = sf.read(dtype="float32", always_2d=True)
        except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
            raise AudioError(f"cannot read audio {entry}: {e}", reason="unreadable") from e
        declared = _declared_wav_frames(source)
    if declared is not None and len(wave) < declared:
        raise AudioError(f"audio is truncated: the header declares {declared} frames, the file "
                         f"holds {len(wave)} ({entry})", reason="truncated")
    return wave, rate


def resample(wave: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """Resample a 1-D waveform from ``rate`` to ``fs`` Hz (scipy's polyphase filter)."""
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(fs))
    out = resample_poly(np.asarray(wave, dtype=np.float64), int(fs) // g, int(rate) // g)
    return out.astype(np.float32)


def read_utterance(utt: str, entry: str, where: str, fs: Optional[int],
                   channel: Optional[int] = None, min_samples: int = 1,
                   allow_commands: bool = False, resample_to_fs: bool = False
                   ) -> Tuple[np.ndarray, int]:
    """One utterance's checked mono waveform at ``fs`` Hz (None: kept) and the file's rate.

    Commands need ``allow_commands``, another rate ``resample_to_fs``, multi-channel audio
    ``channel`` (never mixed); AudioError messages start with ``where`` and ``utt``."""
    prefix = f"{where}: utterance {utt}"
    try:
        wave, rate = read_audio(entry, allow_commands=allow_commands)
    except AudioError as e:
        raise AudioError(f"{prefix}: {e}", reason=e.reason) from e
    if fs is not None and rate != fs and not resample_to_fs:
        raise AudioError(f"{prefix}: sample rate {rate} Hz but the feature config expects {fs} Hz "
                         f"({entry}); resample it in data preparation or pass --resample true")
    n_samples, n_channels = wave.shape
    if channel is None:
        if n_channels != 1:
            raise AudioError(f"{prefix}: audio has {n_channels} channels ({entry}); "
                             "give --channel to select one")
        channel = 0
    elif not 0 <= channel < n_channels:
        raise AudioError(f"{prefix}: --channel {channel} requested but the audio has "
                         f"{n_channels} channel(s) ({entry})")
    wave = wave[:, channel]
    if n_samples == 0:
        raise AudioError(f"{prefix}: audio is empty ({entry})", reason="empty")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{prefix}: audio contains NaN or infinite samples ({entry})",
                         reason="non_finite")
    if fs is not None and rate != fs:
        wave = resample(wave, rate, fs)
    if len(wave) < min_samples:
        raise AudioError(f"{prefix}: audio has {len(wave)} samples, fewer than the "
                         f"{min_samples} the feature extractor needs ({entry})", reason="too_short")
    return wave, rate


def load_utterance(utt: str, entry: str, where: str, fs: int, channel: Optional[int] = None,
                   min_samples: int = 1, allow_commands: bool = False,
                   resample_to_fs: bool = False) -> np.ndarray:
    """:func:`read_utterance` without the file's rate."""
    return read_utterance(utt, entry, where, fs, channel, min_samples, allow_commands,
                          resample_to_fs)[0]
