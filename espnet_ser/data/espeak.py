"""A small ctypes wrapper of libespeak-ng as shipped by the PyPI package ``espeakng-loader``.

No system espeak package is needed: ``espeakng_loader.get_library_path()`` gives the shared
library and ``espeakng_loader.get_data_path()`` its ``espeak-ng-data`` directory.

The library keeps global state, so there is one engine per process (:func:`get_engine`).
It is initialised in synchronous mode: ``espeak_Synth`` returns once the whole text is
synthesised, and a callback collects the int16 samples::

    from espnet_ser.data.espeak import get_engine
    audio, sr = get_engine().synthesize("the dog sat by the door", voice="en-us+f4",
                                        rate=160, pitch=55, pitch_range=60)

Determinism: eSpeak NG carries some synthesis state (pitch flutter phase, gain control)
from one call to the next within a process, and its breathy voice variants (``f2 f3 f5``
and a few named ones) add noise whose sequence differs between processes. The same
sequence of calls in a fresh process gives byte-identical audio for the other variants;
:func:`is_deterministic_variant` tells which is which, and
:func:`espnet_ser.data.mini_emo` synthesises fixed chunks of utterances, each in a fresh
worker process, for that reason.
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
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_EE_NOT_FOUND = 2

PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4
PARAM_WORDGAP = 7

RATE_MIN, RATE_MAX = 80, 450

# Variants whose voice file adds breath noise: not reproducible across processes.
_BREATH_KEYWORD = "breath"

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class ESpeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or asked to do something."""


def _loader():
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ESpeakError(
            "the Python package espeakng-loader is not installed "
            "(pip install espeakng-loader); it ships libespeak-ng and its voice data"
        ) from e
    return espeakng_loader


def default_library_path() -> str:
    return _loader().get_library_path()


def default_data_path() -> str:
    try:
        return _loader().get_data_path()
    except RuntimeError as e:
        raise ESpeakError(f"espeak-ng-data not found: {e}") from e


@functools.lru_cache(maxsize=None)
def _language_names(data_path: str) -> Tuple[str, ...]:
    """Lower-case names of the voice files under ``lang/`` (what espeak_SetVoiceByName
    resolves: ``en-us``, ``en-gb-scotland``, ``en`` for British English, ...)."""
    files = Path(data_path, "lang").rglob("*")
    return tuple(sorted({p.name.lower() for p in files if p.is_file()}))


@functools.lru_cache(maxsize=None)
def _variant_files(data_path: str) -> Dict[str, Path]:
    vdir = Path(data_path, "voices", "!v")
    if not vdir.is_dir():
        return {}
    return {p.name.lower(): p for p in vdir.iterdir() if p.is_file()}


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
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.split()[:1] == [_BREATH_KEYWORD]:
            return False
    return True


def check_voice(voice: str, data_path: Optional[str] = None) -> None:
    """Raise ESpeakError unless ``voice`` is ``<language>`` or ``<language>+<variant>``
    with both parts present in the shipped voice data."""
    data_path = data_path or default_data_path()
    if not voice or voice.count("+") > 1:
        raise ESpeakError(f"bad eSpeak NG voice name {voice!r}: use <language>[+<variant>]")
    lang, _, variant = voice.partition("+")
    if lang.lower() not in _language_names(data_path):
        raise ESpeakError(
            f"unknown eSpeak NG voice {voice!r}: language {lang!r} is not in {data_path}/lang"
        )
    if variant and variant.lower() not in _variant_files(data_path):
        raise ESpeakError(
            f"unknown eSpeak NG voice {voice!r}: variant {variant!r} is not in "
            f"{data_path}/voices/!v"
        )


class ESpeak:
    """One initialised libespeak-ng (the library is a per-process singleton)."""

    def __init__(self, library_path: Optional[str] = None, data_path: Optional[str] = None):
        self.library_path = library_path or default_library_path()
        self.data_path = data_path or default_data_path()
        if not os.path.isfile(self.library_path):
            raise ESpeakError(f"libespeak-ng not found at {self.library_path}")
        if not os.path.isdir(self.data_path):
            raise ESpeakError(f"espeak-ng-data not found at {self.data_path}")
        try:
            lib = ctypes.CDLL(self.library_path)
        except OSError as e:
            raise ESpeakError(f"cannot load libespeak-ng from {self.library_path}: {e}") from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        self._seed_fn = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._seed_fn is not None:
            self._seed_fn.argtypes = [ctypes.c_long]
            self._seed_fn.restype = None
        try:
            self._libc = ctypes.CDLL(None)
            self._libc.srand.argtypes = [ctypes.c_uint]
        except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
            self._libc = None

        sr = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if sr <= 0:
            raise ESpeakError(
                f"espeak_Initialize failed (returned {sr}) with data path {self.data_path}"
            )
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

    def _set(self, param: int, value: int, name: str) -> None:
        err = self._lib.espeak_SetParameter(param, int(value), 0)
        if err != _EE_OK:
            raise ESpeakError(f"espeak_SetParameter({name}={value}) failed with code {err}")

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        volume: int = 100,
        word_gap: int = 0,
        seed: Optional[int] = None,
    ) -> Tuple[np.ndarray, int]:
        """Synthesise ``text``; return (float32 audio in [-1, 1], native sample rate).

        rate: words per minute (80..450); pitch, pitch_range: 0..100 (50 = voice default);
        volume: 0..200 (100 = normal); word_gap: extra pause between words in 10 ms units.
        ``seed`` seeds the library's random generators before synthesis.
        """
        if not text or not text.strip():
            raise ESpeakError("cannot synthesise an empty text")
        check_voice(voice, self.data_path)
        if not RATE_MIN <= rate <= RATE_MAX:
            raise ESpeakError(f"rate {rate} out of range [{RATE_MIN}, {RATE_MAX}] words/min")
        for name, value, lo, hi in (
            ("pitch", pitch, 0, 100), ("pitch_range", pitch_range, 0, 100),
            ("volume", volume, 0, 200), ("word_gap", word_gap, 0, 100),
        ):
            if not lo <= value <= hi:
                raise ESpeakError(f"{name} {value} out of range [{lo}, {hi}]")
        with self._lock:
            err = self._lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if err == _EE_NOT_FOUND:
                raise ESpeakError(f"unknown eSpeak NG voice {voice!r}")
            if err != _EE_OK:
                raise ESpeakError(f"espeak_SetVoiceByName({voice!r}) failed with code {err}")
            # parameters after the voice: loading a voice may reset them
            self._set(PARAM_RATE, int(round(rate)), "rate")
            self._set(PARAM_PITCH, int(round(pitch)), "pitch")
            self._set(PARAM_RANGE, int(round(pitch_range)), "pitch_range")
            self._set(PARAM_VOLUME, int(round(volume)), "volume")
            self._set(PARAM_WORDGAP, int(round(word_gap)), "word_gap")
            if seed is not None:
                if self._seed_fn is not None:
                    self._seed_fn(int(seed) & 0x7FFFFFFF)
                if self._libc is not None:
                    self._libc.srand(int(seed) & 0xFFFFFFFF)
            self._chunks = []
            data = text.encode("utf-8")
            err = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
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


def synthesize(text: str, voice: str = "en-us", **kwargs) -> Tuple[np.ndarray, int]:
    """Shortcut for ``get_engine().synthesize(text, voice, ...)``."""
    return get_engine().synthesize(text, voice, **kwargs)
