"""A ctypes wrapper of libespeak-ng (PyPI ``espeakng-loader``): one engine per process
(:func:`get_engine`). Except for breathy variants (:func:`is_deterministic_variant`), the
same calls in a fresh process give the same audio.
"""

import ctypes
import functools
import logging
import os
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

# speak_lib.h constants (stable public API)
_AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_DONT_EXIT, _POS_CHARACTER, _CHARS_UTF8 = 2, 0x8000, 1, 1
_EE_OK, _EE_NOT_FOUND = 0, 2
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
RATE_MIN, RATE_MAX = 80, 450

# Variants whose voice file adds breath noise: not reproducible across processes.
_BREATH_KEYWORD = "breath"

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or asked to do something."""


def _loader():
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ESpeakError("the Python package espeakng-loader is not installed (pip install "
                          "espeakng-loader); it ships libespeak-ng and its voice data") from e
    return espeakng_loader


def default_data_path() -> str:
    try:
        return _loader().get_data_path()
    except RuntimeError as e:
        raise ESpeakError(f"espeak-ng-data not found: {e}") from e


@functools.lru_cache(maxsize=None)
def _language_names(data_path: str) -> Tuple[str, ...]:
    """Lower-case names of the voice files under ``lang/`` (``en-us``, ``en``, ...)."""
    files = Path(data_path, "lang").rglob("*")
    return tuple(sorted({p.name.lower() for p in files if p.is_file()}))


@functools.lru_cache(maxsize=None)
def _variant_files(data_path: str) -> Dict[str, Path]:
    vdir = Path(data_path, "voices", "!v")
    return {p.name.lower(): p for p in vdir.iterdir() if p.is_file()} if vdir.is_dir() else {}


def list_languages(data_path: Optional[str] = None) -> List[str]:
    """Language names usable as the part before ``+`` in a voice name (``en-us``, ...)."""
    return list(_language_names(data_path or default_data_path()))


def list_variants(data_path: Optional[str] = None) -> List[str]:
    """Voice variant names usable after ``+`` (``m1``, ``f4``, ``linda``, ...)."""
    return sorted(_variant_files(data_path or default_data_path()))


def is_deterministic_variant(variant: str, data_path: Optional[str] = None) -> bool:
    """False for variants that mix in breath noise (not reproducible across processes)."""
    path = _variant_files(data_path or default_data_path()).get(variant.lower())
    if path is None:
        raise ESpeakError(f"unknown eSpeak NG voice variant {variant!r}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return not any(line.split()[:1] == [_BREATH_KEYWORD] for line in lines)


def check_voice(voice: str, data_path: Optional[str] = None) -> None:
    """Raise ESpeakError unless ``voice`` is ``<language>`` or ``<language>+<variant>``
    with both parts present in the shipped voice data."""
    data_path = data_path or default_data_path()
    if not voice or voice.count("+") > 1:
        raise ESpeakError(f"bad eSpeak NG voice name {voice!r}: use <language>[+<variant>]")
    lang, _, variant = voice.partition("+")
    if lang.lower() not in _language_names(data_path):
        raise ESpeakError(
            f"unknown eSpeak NG voice {voice!r}: language {lang!r} is not in {data_path}/lang")
    if variant and variant.lower() not in _variant_files(data_path):
        raise ESpeakError(f"unknown eSpeak NG voice {voice!r}: variant {variant!r} is not in "
                          f"{data_path}/voices/!v")


class ESpeak:
    """One initialised libespeak-ng (the library is a per-process singleton)."""

    def __init__(self, library_path: Optional[str] = None, data_path: Optional[str] = None):
        self.library_path = library_path or _loader().get_library_path()
        self.data_path = data_path or default_data_path()
        if not os.path.isfile(self.library_path):
            raise ESpeakError(f"libespeak-ng not found at {self.library_path}")
        if not os.path.isdir(self.data_path):
            raise ESpeakError(f"espeak-ng-data not found at {self.data_path}")
        try:
            lib = ctypes.CDLL(self.library_path)
        except OSError as e:
            raise ESpeakError(f"cannot load libespeak-ng from {self.library_path}: {e}") from e
        c = ctypes
        for name, argtypes, restype in (
            ("espeak_Initialize", [c.c_int, c.c_int, c.c_char_p, c.c_int], c.c_int),
            ("espeak_SetSynthCallback", [_SYNTH_CALLBACK], None),
            ("espeak_SetVoiceByName", [c.c_char_p], c.c_int),
            ("espeak_SetParameter", [c.c_int, c.c_int, c.c_int], c.c_int),
            ("espeak_Synth", [c.c_char_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint, c.c_uint,
                              c.c_void_p, c.c_void_p], c.c_int),
            ("espeak_Synchronize", [], c.c_int),
        ):
            getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, restype
        self._seed_fn = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._seed_fn is not None:
            self._seed_fn.argtypes, self._seed_fn.restype = [ctypes.c_long], None
        try:
            self._libc = ctypes.CDLL(None)
            self._libc.srand.argtypes = [ctypes.c_uint]
        except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
            self._libc = None

        sr = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT)
        if sr <= 0:
            raise ESpeakError(
                f"espeak_Initialize failed (returned {sr}) with data path {self.data_path}")
        self.sample_rate = int(sr)
        self._lib = lib
        self._chunks: List[np.ndarray] = []
        self._lock = threading.Lock()

        def _collect(wav, numsamples, events):
            if wav and numsamples > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0

        # keep a reference: the C library holds only the function pointer
        self._callback = _SYNTH_CALLBACK(_collect)
        lib.espeak_SetSynthCallback(self._callback)

    def synthesize(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
                   pitch_range: int = 50, volume: int = 100, word_gap: int = 0,
                   seed: Optional[int] = None) -> Tuple[np.ndarray, int]:
        """(float32 audio in [-1, 1], native sample rate) of ``text``; rate in words/min,
        word_gap in 10 ms; ``seed`` seeds the library's RNGs."""
        if not text or not text.strip():
            raise ESpeakError("cannot synthesise an empty text")
        check_voice(voice, self.data_path)
        params = ((PARAM_RATE, "rate", rate, RATE_MIN, RATE_MAX),
                  (PARAM_PITCH, "pitch", pitch, 0, 100),
                  (PARAM_RANGE, "pitch_range", pitch_range, 0, 100),
                  (PARAM_VOLUME, "volume", volume, 0, 200),
                  (PARAM_WORDGAP, "word_gap", word_gap, 0, 100))
        for _, name, value, lo, hi in params:
            if not lo <= value <= hi:
                raise ESpeakError(f"{name} {value} out of range [{lo}, {hi}]"
                                  + (" words/min" if name == "rate" else ""))
        with self._lock:
            err = self._lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if err == _EE_NOT_FOUND:
                raise ESpeakError(f"unknown eSpeak NG voice {voice!r}")
            if err != _EE_OK:
                raise ESpeakError(f"espeak_SetVoiceByName({voice!r}) failed with code {err}")
            for param, name, value, _, _ in params:  # after the voice: loading it resets them
                err = self._lib.espeak_SetParameter(param, int(round(value)), 0)
                if err != _EE_OK:
                    raise ESpeakError(
                        f"espeak_SetParameter({name}={int(round(value))}) failed with code {err}")
            if seed is not None:
                if self._seed_fn is not None:
                    self._seed_fn(int(seed) & 0x7FFFFFFF)
                if self._libc is not None:
                    self._libc.srand(int(seed) & 0xFFFFFFFF)
            self._chunks = []
            data = text.encode("utf-8")
            err = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != _EE_OK:
                raise ESpeakError(f"espeak_Synth failed with code {err} for text {text!r}")
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise ESpeakError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        return audio, self.sample_rate


_ENGINE: Optional[ESpeak] = None
_ENGINE_PID: Optional[int] = None


def get_engine(library_path: Optional[str] = None, data_path: Optional[str] = None) -> ESpeak:
    """The process-wide engine, created on first use."""
    global _ENGINE, _ENGINE_PID
    if _ENGINE is None or _ENGINE_PID != os.getpid():
        _ENGINE = ESpeak(library_path, data_path)
        _ENGINE_PID = os.getpid()
        logging.debug("libespeak-ng initialised at %d Hz", _ENGINE.sample_rate)
    return _ENGINE
