"""Log-mel filterbank features computed by ESPnet's own frontend, and their dumps.

The features are produced by an instance of
``espnet2.asr.frontend.default.DefaultFrontend`` (STFT -> power spectrum -> librosa
mel matrix -> natural log), run in eval mode without gradients on one utterance at a
time. A stock ESPnet model that reads raw waves through a DefaultFrontend with the same
arguments therefore sees exactly the matrices we dump (as in ESPnet's decoding, which
feeds one utterance at a time; in a zero-padded training batch the last frame of a
shorter utterance, whose window reaches past its end, sees the batch padding instead of
the reflect padding, so that one frame differs from the unpadded computation).

A config with ``normalization: tacotron`` (``conf/fbank_gst_tacotron.yaml``) gives instead
the input GST-Tacotron's reference encoder was trained on, from the same STFT and mel
matrix (see :class:`FbankExtractor`).

Dump layout written by :func:`extract_part` and :func:`merge_parts`::

    <out_dir>/split<nj>/feats.<J>.ark      float32 matrices (frames, n_mels), Kaldi binary
    <out_dir>/split<nj>/feats.<J>.scp      <utt> <absolute ark path>:<offset>
    <out_dir>/split<nj>/feats_shape.<J>    <utt> <frames>,<n_mels>
    <out_dir>/split<nj>/fbank.<J>.yaml     the frontend arguments used for part J
    <out_dir>/feats.scp  feats_shape  fbank.yaml  + copies of the data directory files

Other extractors (waveform and SSL hidden-state dumps, :mod:`espnet_ser.features.ssl_states`)
use the same layout; their ``conf`` (with an ``extractor`` key) is written whole to
``fbank.yaml`` and 1-D arrays get ``<utt> <samples>`` shape lines.

The scp files hold absolute ark paths so a dump can be read from any working directory
(ESPnet's own dumps hold paths relative to the recipe directory).

Audio policy, shared by every reader of wav.scp (:func:`read_audio`,
:func:`load_utterance`):

* commands (values ending in ``|``) are refused unless ``allow_commands=True``
  (``--allow_commands true``); the line is then run by the shell;
* a missing, unreadable, truncated (a WAV holding fewer frames than its header
  declares), empty or too short file is an error naming the utterance and the wav.scp
  line; with ``on_error="reject"`` (``--on_error reject``) the utterance is instead left
  out of the dump and listed in ``split<nj>/reject.<J>`` and ``<out_dir>/reject_list``;
* a sample rate other than the config's ``fs`` is an error unless
  ``resample_to_fs=True`` (``--resample true``: scipy polyphase resampling);
* multi-channel audio is an error unless ``channel`` (``--channel``, 0-based) picks
  one channel, which is then used as is (channels are never mixed).
"""

import io
import logging
import math
import os
import struct
import time
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import kaldiio
import numpy as np
import soundfile
import torch
import yaml

from espnet_ser.data.datadir import (
    DataDirError,
    atomic_write_text,
    read_kaldi_map,
    spk2utt_from_utt2spk,
    validate_data_dir,
)

PathLike = Union[str, Path]

# Arguments of DefaultFrontend that describe the filterbank (its WPE / beamformer
# options are for multi-channel enhancement and are not used here).
FRONTEND_KEYS = (
    "fs",
    "n_fft",
    "win_length",
    "hop_length",
    "window",
    "center",
    "normalized",
    "onesided",
    "n_mels",
    "fmin",
    "fmax",
    "htk",
)

# How the mel filterbank is turned into features (``normalization:`` of a filterbank
# config; the GST reference encoder's input, see conf/fbank_gst*.yaml):
#   log       ESPnet's DefaultFrontend: natural log of the power mel (the default)
#   tacotron  GST-Tacotron's input: optional trimming of leading / trailing silence,
#             pre-emphasis, magnitude mel, 20 log10, then (dB - ref_db + max_db) / max_db
#             clipped to [1e-8, 1]
MEL_NORMALIZATIONS = ("log", "tacotron")
# Options of ``normalization: tacotron`` and their defaults (GST-Tacotron's settings;
# trim_top_db: null = no trimming, otherwise librosa.effects.trim's top_db).
TACOTRON_DEFAULTS = {"preemphasis": 0.97, "ref_db": 20.0, "max_db": 100.0, "trim_top_db": None}
NORMALIZATION_KEYS = ("normalization",) + tuple(TACOTRON_DEFAULTS)


class FeatureError(ValueError):
    """Features cannot be computed, or a dump is incomplete or inconsistent."""


def waveform_input(wave, min_samples: int = 0, needed: str = "") -> np.ndarray:
    """A 1-D waveform as a contiguous float32 array, for an extractor's ``__call__``.

    FeatureError if it is not 1-D or has fewer than ``min_samples`` samples (the message
    ends with ``needed``, e.g. "at least 400 are needed for n_fft=400").
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise FeatureError(f"expected a 1-D waveform, got shape {wave.shape}")
    if len(wave) < min_samples:
        raise FeatureError(f"waveform has {len(wave)} samples; {needed}")
    return np.ascontiguousarray(wave, dtype=np.float32)


def check_finite(out: np.ndarray, what: str) -> np.ndarray:
    """``out``; FeatureError "<what> hold NaN or infinite values" if it holds any."""
    if not np.all(np.isfinite(out)):
        raise FeatureError(f"{what} hold NaN or infinite values")
    return out


class AudioError(FeatureError):
    """An utterance's audio cannot be used (unreadable, wrong rate, empty, ...).

    ``reason`` is a short tag (``missing``, ``unreadable``, ``truncated``, ``empty``,
    ``too_short``, ``non_finite``, ``command_failed``) for faults of the audio itself,
    which ``on_error="reject"`` may skip; it is None for policy errors (a refused
    command, a sample-rate or channel mismatch), which always fail.
    """

    def __init__(self, message: str, reason: Optional[str] = None):
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------
# Configuration and the extractor
# --------------------------------------------------------------------------------------


def load_fbank_config(path: PathLike) -> Dict:
    """Read a filterbank YAML (see ``conf/fbank.yaml``); unknown keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: no such config file")
    with path.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if conf is None:
        conf = {}
    if not isinstance(conf, dict):
        raise FeatureError(f"{path}: expected a mapping of frontend arguments")
    known = FRONTEND_KEYS + NORMALIZATION_KEYS
    unknown = sorted(set(conf) - set(known))
    if unknown:
        raise FeatureError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {' '.join(known)}"
        )
    try:
        mel_normalization(conf)
    except FeatureError as e:
        raise FeatureError(f"{path}: {e}") from None
    return conf


def mel_normalization(conf: Mapping) -> Dict:
    """The normalisation options of a filterbank config, checked, defaults filled in.

    ``{"normalization": "log"}`` or ``{"normalization": "tacotron", "preemphasis": ...,
    "ref_db": ..., "max_db": ..., "trim_top_db": ...}``. A Tacotron option given without
    ``normalization: tacotron``, or a value out of range, is a FeatureError naming the field.
    """
    kind = conf.get("normalization", "log")
    if kind not in MEL_NORMALIZATIONS:
        raise FeatureError(f"normalization: {kind!r}; expected one of {', '.join(MEL_NORMALIZATIONS)}")
    given = {k: conf[k] for k in TACOTRON_DEFAULTS if k in conf}
    if kind != "tacotron":
        if given:
            raise FeatureError(f"{', '.join(sorted(given))} only apply with normalization: tacotron "
                               f"(normalization is {kind})")
        return {"normalization": kind}
    opts = dict(TACOTRON_DEFAULTS, **given)
    for key in ("preemphasis", "ref_db", "max_db"):
        if isinstance(opts[key], bool) or not isinstance(opts[key], (int, float)):
            raise FeatureError(f"{key}: expected a number, got {opts[key]!r}")
    if not 0 <= opts["preemphasis"] < 1:
        raise FeatureError(f"preemphasis: {opts['preemphasis']} is outside [0, 1)")
    if opts["max_db"] <= 0:
        raise FeatureError(f"max_db: {opts['max_db']} must be positive")
    top = opts["trim_top_db"]
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, float)) or top <= 0):
        raise FeatureError(f"trim_top_db: {top!r}; expected a positive number of dB or null (no trimming)")
    return dict({"normalization": kind}, **{k: (float(v) if v is not None else None) for k, v in opts.items()})


class FbankExtractor:
    """Compute log-mel filterbanks exactly as ESPnet's DefaultFrontend does.

    ``conf`` holds DefaultFrontend arguments (:data:`FRONTEND_KEYS`); missing ones take
    DefaultFrontend's defaults. Call the extractor on a 1-D float waveform (the float32
    samples soundfile returns, i.e. in [-1, 1) for PCM files, as ESPnet loads them).

    With ``normalization="tacotron"`` (and the options of :data:`TACOTRON_DEFAULTS`) the
    same STFT and mel matrix give GST-Tacotron's input instead: the waveform, trimmed
    with ``librosa.effects.trim(top_db=trim_top_db)`` when ``trim_top_db`` is set (kept
    whole if less than ``min_samples`` would remain), is pre-emphasised
    (``y[n] - preemphasis * y[n-1]``, the first sample kept), the mel matrix is applied
    to the STFT magnitude, and ``clip((20 log10(max(mel, 1e-5)) - ref_db + max_db) /
    max_db, 1e-8, 1)`` is returned. :meth:`num_frames` assumes no trimming.
    """

    # kaldiio compression method of the dump (None: float32 matrices); see
    # SSLStatesExtractor(compress=True)
    compression_method = None

    def __init__(self, **conf):
        from espnet2.asr.frontend.default import DefaultFrontend

        unknown = sorted(set(conf) - set(FRONTEND_KEYS) - set(NORMALIZATION_KEYS))
        if unknown:
            raise FeatureError(f"unknown filterbank argument(s): {', '.join(unknown)}")
        self.normalization = mel_normalization(conf)
        conf = {k: v for k, v in conf.items() if k in FRONTEND_KEYS}
        try:
            # frontend_conf=None: no WPE/beamformer module. With single-channel input
            # ESPnet's default (disabled) enhancement frontend is the identity anyway.
            frontend = DefaultFrontend(frontend_conf=None, **conf)
        except Exception as e:  # typeguard / value errors from ESPnet
            raise FeatureError(f"invalid filterbank config {conf}: {e}") from e
        self.frontend = frontend.eval()
        self.conf = dict(conf)
        if self.normalization["normalization"] != "log":  # the default is not written
            self.conf.update(self.normalization)
        self.fs = int(frontend.logmel.mel_options["sr"])
        self.n_mels = frontend.output_size()
        self.n_fft = frontend.stft.n_fft
        self.hop_length = frontend.stft.hop_length
        self.center = frontend.stft.center

    @classmethod
    def from_yaml(cls, path: PathLike, **overrides) -> "FbankExtractor":
        conf = load_fbank_config(path)
        conf.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**conf)

    @property
    def min_samples(self) -> int:
        """Shortest waveform the STFT accepts (reflect padding needs > n_fft/2 samples)."""
        return self.n_fft // 2 + 1 if self.center else self.n_fft

    def num_frames(self, num_samples: int) -> int:
        """Number of frames produced for a waveform of ``num_samples`` samples."""
        if self.center:
            return num_samples // self.hop_length + 1
        return (num_samples - self.n_fft) // self.hop_length + 1

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Return float32 features (frames, n_mels) of a 1-D waveform."""
        wave = waveform_input(
            wave, self.min_samples, f"at least {self.min_samples} are needed for n_fft={self.n_fft}"
        )
        if self.normalization["normalization"] == "tacotron":
            return check_finite(self._tacotron_mel(wave), "the features")
        x = torch.from_numpy(wave)[None]
        with torch.no_grad():
            feats, lens = self.frontend(x, torch.tensor([x.shape[1]], dtype=torch.long))
        out = feats[0, : int(lens[0])].cpu().numpy().astype(np.float32, copy=False)
        # LogMel floors the mel energies (at 1e-10) before the log, so silence gives
        # finite values; NaN/inf here would come from the input and is refused.
        return check_finite(out, "the features")

    def _tacotron_mel(self, wave: np.ndarray) -> np.ndarray:
        """GST-Tacotron's normalised dB magnitude mel of a checked float32 waveform."""
        opts = self.normalization
        if opts["trim_top_db"] is not None:
            import librosa

            trimmed, _ = librosa.effects.trim(wave, top_db=opts["trim_top_db"])
            if len(trimmed) >= self.min_samples:
                wave = trimmed
        wave = np.concatenate([wave[:1], wave[1:] - np.float32(opts["preemphasis"]) * wave[:-1]])
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        with torch.no_grad():
            spec, _ = self.frontend.stft(x, torch.tensor([x.shape[1]], dtype=torch.long))
            magnitude = spec.pow(2).sum(-1).sqrt()  # (1, frames, freq)
            mel = torch.matmul(magnitude, self.frontend.logmel.melmat)  # (1, frames, n_mels)
            db = 20.0 * torch.log10(torch.clamp(mel, min=1e-5))
            out = torch.clamp((db - opts["ref_db"] + opts["max_db"]) / opts["max_db"], 1e-8, 1.0)
        return out[0].cpu().numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------


def _declared_wav_frames(f) -> Optional[int]:
    """Frames a RIFF/WAVE header declares (data chunk size / block size), else None.

    None for other formats and for headers without a usable size (0 or 0xFFFFFFFF,
    as written by streaming tools). ``f`` is a seekable binary file, left at offset 0.
    """
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
    """Read a wav.scp value with soundfile: a file path or a Kaldi command ``cmd |``.

    Commands are run only with ``allow_commands`` (a wav.scp line is then executed by
    the shell); otherwise they are refused. A WAV file holding fewer frames than its
    header declares is an error (libsndfile would silently return the frames present).
    Returns float32 samples shaped (samples, channels) and the sample rate. Raises
    AudioError with the reason (without utterance context; see :func:`load_utterance`).
    """
    entry = entry.strip()
    if entry.endswith("|"):
        if not allow_commands:
            raise AudioError(
                f"the wav.scp value is a shell command ({entry}); commands are not run "
                "unless allowed explicitly (allow_commands=True, --allow_commands true)"
            )
        f = kaldiio.utils.open_like_kaldi(entry, "rb")
        try:
            data = f.read()
        finally:
            status = f.close()
        if status:
            raise AudioError(
                f"command exited with status {status >> 8}: {entry}", reason="command_failed"
            )
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
        raise AudioError(
            f"audio is truncated: the header declares {declared} frames, the file holds "
            f"{len(wave)} ({entry})",
            reason="truncated",
        )
    return wave, rate


def resample(wave: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """Resample a 1-D waveform from ``rate`` to ``fs`` Hz (scipy's polyphase filter)."""
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(fs))
    out = resample_poly(np.asarray(wave, dtype=np.float64), int(fs) // g, int(rate) // g)
    return out.astype(np.float32)


def read_utterance(
    utt: str,
    entry: str,
    where: str,
    fs: Optional[int],
    channel: Optional[int] = None,
    min_samples: int = 1,
    allow_commands: bool = False,
    resample_to_fs: bool = False,
) -> Tuple[np.ndarray, int]:
    """Like :func:`load_utterance`; also returns the file's own sample rate.

    ``fs=None`` accepts any rate (the waveform is returned at the file's rate).
    """
    prefix = f"{where}: utterance {utt}"
    try:
        wave, rate = read_audio(entry, allow_commands=allow_commands)
    except AudioError as e:
        raise AudioError(f"{prefix}: {e}", reason=e.reason) from e
    if fs is not None and rate != fs and not resample_to_fs:
        raise AudioError(
            f"{prefix}: sample rate {rate} Hz but the feature config expects {fs} Hz "
            f"({entry}); resample it in data preparation or pass --resample true"
        )
    n_samples, n_channels = wave.shape
    if channel is None:
        if n_channels != 1:
            raise AudioError(
                f"{prefix}: audio has {n_channels} channels ({entry}); "
                "give --channel to select one"
            )
        wave = wave[:, 0]
    else:
        if not 0 <= channel < n_channels:
            raise AudioError(
                f"{prefix}: --channel {channel} requested but the audio has "
                f"{n_channels} channel(s) ({entry})"
            )
        wave = wave[:, channel]
    if n_samples == 0:
        raise AudioError(f"{prefix}: audio is empty ({entry})", reason="empty")
    if not np.all(np.isfinite(wave)):
        raise AudioError(
            f"{prefix}: audio contains NaN or infinite samples ({entry})", reason="non_finite"
        )
    if fs is not None and rate != fs:
        wave = resample(wave, rate, fs)
    if len(wave) < min_samples:
        raise AudioError(
            f"{prefix}: audio has {len(wave)} samples, fewer than the {min_samples} "
            f"the feature extractor needs ({entry})",
            reason="too_short",
        )
    return wave, rate


def load_utterance(
    utt: str,
    entry: str,
    where: str,
    fs: int,
    channel: Optional[int] = None,
    min_samples: int = 1,
    allow_commands: bool = False,
    resample_to_fs: bool = False,
) -> np.ndarray:
    """Read one utterance's mono waveform at ``fs`` Hz and check it.

    ``where`` names the wav.scp line (``data/train/wav.scp:12``); every error message
    starts with it and the utterance id. Commands (``cmd |``) are refused unless
    ``allow_commands``. Another sample rate is an error unless ``resample_to_fs``.
    Multi-channel audio is an error unless ``channel`` (0-based) selects one channel.
    """
    return read_utterance(
        utt, entry, where, fs, channel, min_samples, allow_commands, resample_to_fs
    )[0]


# --------------------------------------------------------------------------------------
# Splitting a data directory into jobs
# --------------------------------------------------------------------------------------


def split_utterances(utts: Sequence[str], nj: int) -> List[List[str]]:
    """Split utterances into ``nj`` contiguous parts of the C-sorted list.

    Part sizes differ by at most one (the first ``len(utts) % nj`` parts are one
    longer); every utterance is in exactly one part. With more jobs than utterances the
    last parts are empty.
    """
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    ordered = sorted(utts)
    if len(set(ordered)) != len(ordered):
        raise ValueError("utterance ids are not unique")
    base, extra = divmod(len(ordered), nj)
    parts, start = [], 0
    for j in range(nj):
        size = base + (1 if j < extra else 0)
        parts.append(ordered[start : start + size])
        start += size
    return parts


def read_wav_scp(data_dir: PathLike) -> List[Tuple[str, str, str]]:
    """Return ``(utt, entry, "<wav.scp>:<line>")`` for every line of data_dir/wav.scp."""
    data_dir = Path(data_dir)
    if (data_dir / "segments").is_file():
        raise FeatureError(
            f"{data_dir}/segments exists: segmented recordings are not supported; "
            "cut the utterances into their own files in data preparation"
        )
    wav_scp = data_dir / "wav.scp"
    mapping = read_kaldi_map(wav_scp)  # sorted, unique, non-empty (else DataDirError)
    return [(utt, entry, f"{wav_scp}:{i}") for i, (utt, entry) in enumerate(mapping.items(), 1)]


def part_paths(out_dir: PathLike, nj: int, job: int) -> Dict[str, Path]:
    """Files of part ``job`` (1-based) of ``nj``, with absolute paths."""
    split = Path(out_dir).resolve() / f"split{nj}"
    return {
        "dir": split,
        "ark": split / f"feats.{job}.ark",
        "scp": split / f"feats.{job}.scp",
        "shape": split / f"feats_shape.{job}",
        "conf": split / f"fbank.{job}.yaml",
        "reject": split / f"reject.{job}",
    }


def _read_keys(path: Path) -> List[str]:
    with path.open(encoding="utf-8") as f:
        return [line.split(maxsplit=1)[0] for line in f if line.strip()]


def _read_rejects(path: Path) -> Dict[str, str]:
    """``<utt> <reason>`` lines of a reject list; empty if the file does not exist."""
    if not path.is_file():
        return {}
    return read_kaldi_map(path, check_sorted=False)


def _part_is_complete(paths: Mapping[str, Path], utts: Sequence[str], reject: bool) -> bool:
    if not all(paths[k].is_file() for k in ("ark", "scp", "shape", "conf")):
        return False
    rejected = _read_rejects(paths["reject"])
    if rejected and not reject:
        return False  # made with on_error="reject"; recompute (and fail) without it
    kept = [u for u in utts if u not in rejected]
    return (
        set(rejected) <= set(utts)
        and _read_keys(paths["scp"]) == kept
        and _read_keys(paths["shape"]) == kept
    )


def _dump_conf_text(conf: Mapping) -> str:
    """The dump's config (``fbank.yaml``): frontend arguments (and a normalisation other
    than the default ``log``) of a filterbank extractor;
    the whole ``conf`` of other extractors (those naming themselves with ``extractor``,
    e.g. the waveform and SSL hidden-state dumps of :mod:`espnet_ser.features.ssl_states`).
    """
    if "extractor" in conf:
        return yaml.safe_dump(dict(conf), sort_keys=False)
    keys = FRONTEND_KEYS + NORMALIZATION_KEYS
    return yaml.safe_dump({k: conf[k] for k in keys if k in conf}, sort_keys=False)


def _read_text_or_none(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _unlink_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def extract_part(
    data_dir: PathLike,
    out_dir: PathLike,
    extractor: FbankExtractor,
    nj: int,
    job: int,
    channel: Optional[int] = None,
    overwrite: bool = False,
    allow_commands: bool = False,
    resample_to_fs: bool = False,
    on_error: str = "fail",
) -> Path:
    """Extract features of part ``job`` (1-based) of ``nj``; return the part's scp.

    Audio handling: see :func:`load_utterance` (``allow_commands``, ``resample_to_fs``,
    ``channel``). With ``on_error="reject"`` an utterance whose audio is faulty
    (:class:`AudioError` with a ``reason``) is left out and listed as ``<utt> <reason>``
    in ``split<nj>/reject.<job>``; with ``"fail"`` (default) it stops the job.
    Matrices are written as float32, or Kaldi compressed when the extractor's
    ``compression_method`` (a kaldiio method number) is set.

    A finished part (its scp and shape file list exactly its utterances, made with the
    same config) is kept unless ``overwrite``; a part made with another config is an
    error unless ``overwrite``. Everything is written under temporary names first; the
    previous results are replaced only once the whole part has been computed, and the
    part's scp, written last, marks it finished.
    """
    if not 1 <= job <= nj:
        raise ValueError(f"--job must be in 1..{nj}, got {job}")
    _check_on_error(on_error)
    reject = on_error == "reject"
    entries = read_wav_scp(data_dir)
    utts = split_utterances([u for u, _, _ in entries], nj)[job - 1]
    wanted = set(utts)
    todo = [e for e in entries if e[0] in wanted]
    paths = part_paths(out_dir, nj, job)
    paths["dir"].mkdir(parents=True, exist_ok=True)
    tag = f"part {job}/{nj}"

    conf_text = _dump_conf_text(extractor.conf)
    old_conf = _read_text_or_none(paths["conf"])
    if old_conf is not None and yaml.safe_load(old_conf) != yaml.safe_load(conf_text):
        if not overwrite:
            raise FeatureError(
                f"{paths['dir']} holds features extracted with another config "
                f"({paths['conf']}: {yaml.safe_load(old_conf)}); "
                "use --overwrite true or another --out_dir"
            )
    elif not overwrite and _part_is_complete(paths, utts, reject):
        logging.info(f"{tag}: {paths['scp']} already holds its {len(utts)} utterances; kept")
        return paths["scp"]

    tmp = {k: paths[k].with_name(f".{paths[k].name}.{os.getpid()}.tmp") for k in ("ark", "scp")}
    shapes: Dict[str, str] = {}
    rejected: Dict[str, str] = {}
    n_resampled = 0
    n_total, start = len(todo), time.time()
    log_every = max(1, -(-n_total // 10))
    audio_seconds = 0.0
    logging.info(f"{tag}: extracting {n_total} utterances to {paths['ark']}")
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp['ark']},{tmp['scp']}",
                                 compression_method=extractor.compression_method) as writer:
            for i, (utt, entry, where) in enumerate(todo, 1):
                try:
                    wave, rate = read_utterance(
                        utt, entry, where, extractor.fs, channel, extractor.min_samples,
                        allow_commands=allow_commands, resample_to_fs=resample_to_fs,
                    )
                except AudioError as e:
                    if not reject or e.reason is None:
                        raise
                    logging.warning(f"{tag}: rejected: {e}")
                    rejected[utt] = f"{e.reason}: {' '.join(str(e).split())}"
                    continue
                if rate != extractor.fs:
                    n_resampled += 1
                    logging.debug(f"{where}: utterance {utt}: resampled {rate} -> {extractor.fs} Hz")
                feats = extractor(wave)
                writer(utt, feats)
                # ESPnet shape format: <frames>,<dim> (matrices) or <samples> (1-D)
                shapes[utt] = ",".join(str(d) for d in feats.shape)
                audio_seconds += len(wave) / extractor.fs
                if i % log_every == 0 or i == n_total:
                    elapsed = max(time.time() - start, 1e-9)
                    logging.info(
                        f"{tag}: {i}/{n_total} utterances ({100 * i // n_total}%), "
                        f"{i / elapsed:.1f} utt/s, real-time factor "
                        f"{elapsed / max(audio_seconds, 1e-9):.4f}"
                    )
        # The scp refers to the temporary ark name; point it at the final one.
        lines = []
        for line in tmp["scp"].read_text(encoding="utf-8").splitlines():
            utt, loc = line.split(maxsplit=1)
            ark, offset = loc.rsplit(":", 1)
            if Path(ark) != tmp["ark"]:
                raise FeatureError(f"unexpected scp entry written by kaldiio: {line}")
            lines.append(f"{utt} {paths['ark']}:{offset}\n")
        # Commit: the old scp goes first so that a crash in between leaves the part
        # unfinished (recomputed on the next run) rather than pointing into a new ark.
        _unlink_quietly(paths["scp"])
        os.replace(tmp["ark"], paths["ark"])
        atomic_write_text(paths["shape"], "".join(f"{u} {shapes[u]}\n" for u in utts if u in shapes))
        if rejected:
            atomic_write_text(paths["reject"], "".join(f"{u} {r}\n" for u, r in rejected.items()))
        else:
            _unlink_quietly(paths["reject"])
        atomic_write_text(paths["conf"], conf_text)
        atomic_write_text(paths["scp"], "".join(lines))
    finally:
        _unlink_quietly(tmp["ark"], tmp["scp"])
    if n_resampled:
        logging.info(f"{tag}: resampled {n_resampled} utterance(s) to {extractor.fs} Hz")
    if rejected:
        logging.warning(
            f"{tag}: rejected {len(rejected)} utterance(s) with faulty audio; "
            f"listed in {paths['reject']}"
        )
    return paths["scp"]


def _check_on_error(on_error: str) -> None:
    if on_error not in ("fail", "reject"):
        raise ValueError(f"on_error must be 'fail' or 'reject', got {on_error!r}")


# --------------------------------------------------------------------------------------
# Merging the parts
# --------------------------------------------------------------------------------------

# Files of a data directory copied into the dump next to feats.scp.
_COPIED_FILES = ("wav.scp", "text")
_COPIED_PREFIXES = ("utt2", "spk2")


def _data_files_to_copy(data_dir: Path) -> List[Path]:
    files = []
    for p in sorted(data_dir.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.name in _COPIED_FILES or p.name.startswith(_COPIED_PREFIXES):
            files.append(p)
    return files


def _data_file_texts(data_dir: Path, keep: Optional[set] = None) -> Dict[str, str]:
    """Texts of the data directory files copied into a dump, restricted to ``keep``.

    Per-utterance files keep the lines of kept utterances; ``spk2utt`` is rebuilt from
    the kept ``utt2spk``; other ``spk2*`` files keep the speakers left. Without
    ``keep`` the files are copied verbatim.
    """
    files = _data_files_to_copy(data_dir)
    if keep is None:
        return {src.name: src.read_text(encoding="utf-8") for src in files}

    def lines(mapping: Mapping[str, str]) -> str:
        return "".join(f"{k} {v}\n" for k, v in sorted(mapping.items()))

    texts: Dict[str, str] = {}
    utt2spk: Optional[Dict[str, str]] = None
    for src in files:
        if src.name.startswith("spk2"):
            continue
        mapping = read_kaldi_map(src, allow_empty_value=(src.name == "text"))
        kept = {u: v for u, v in mapping.items() if u in keep}
        if src.name == "utt2spk":
            utt2spk = kept
        texts[src.name] = lines(kept)
    speakers = set(utt2spk.values()) if utt2spk is not None else None
    for src in files:
        if not src.name.startswith("spk2"):
            continue
        mapping = read_kaldi_map(src)
        if src.name == "spk2utt":
            if utt2spk is not None:
                mapping = spk2utt_from_utt2spk(utt2spk)
            else:
                mapping = {k: " ".join(u for u in v.split() if u in keep) for k, v in mapping.items()}
                mapping = {k: v for k, v in mapping.items() if v}
        elif speakers is not None:
            mapping = {k: v for k, v in mapping.items() if k in speakers}
        texts[src.name] = lines(mapping)
    return texts


def _collect_parts(
    out_dir: Path, nj: int, parts: Sequence[Sequence[str]], reject: bool = False
) -> Tuple[Dict[str, str], Dict[str, str], str, Dict[str, str]]:
    """Read every part's scp, shape file and config; check they cover their utterances.

    Returns the merged scp and shape maps, the (common) config text and the rejected
    utterances (``utt -> reason``; a part with rejects is an error unless ``reject``).
    """
    scp: Dict[str, str] = {}
    shape: Dict[str, str] = {}
    rejects: Dict[str, str] = {}
    conf_text, conf_job = None, None
    hint = f"run extract_feats with --nj {nj} --job"
    for job, all_utts in enumerate(parts, 1):
        paths = part_paths(out_dir, nj, job)
        for key in ("scp", "shape", "ark", "conf"):
            if not paths[key].is_file():
                raise FeatureError(
                    f"part {job} of {nj} is missing: no {paths[key]} ({hint} {job})"
                )
        part_rejects = _read_rejects(paths["reject"])
        if part_rejects:
            first = next(iter(part_rejects))
            if not reject:
                raise FeatureError(
                    f"part {job} of {nj} rejected {len(part_rejects)} utterance(s) "
                    f"(first: {first} {part_rejects[first]}; see {paths['reject']}); "
                    "merge with --on_error reject to leave them out, or fix the audio "
                    f"and {hint} {job} --overwrite true"
                )
            stray = sorted(set(part_rejects) - set(all_utts))
            if stray:
                raise FeatureError(
                    f"part {job} of {nj}: {paths['reject']} lists utterance {stray[0]} which "
                    f"the data directory does not assign to it ({hint} {job} --overwrite true)"
                )
        rejects.update(part_rejects)
        utts = [u for u in all_utts if u not in part_rejects]
        part_scp = read_kaldi_map(paths["scp"])
        part_shape = read_kaldi_map(paths["shape"])
        for got, src in ((part_scp, paths["scp"]), (part_shape, paths["shape"])):
            missing = [u for u in utts if u not in got]
            if missing:
                raise FeatureError(
                    f"part {job} of {nj}: utterance {missing[0]} is missing from {src}"
                    + (f" ({len(missing)} utterances in all)" if len(missing) > 1 else "")
                    + f"; the data directory changed or the job failed ({hint} {job})"
                )
            extra = sorted(set(got) - set(utts))
            if extra:
                raise FeatureError(
                    f"part {job} of {nj}: {src} holds utterance {extra[0]} which the "
                    f"data directory does not assign to it ({hint} {job} --overwrite true)"
                )
        text = paths["conf"].read_text(encoding="utf-8")
        if conf_text is None:
            conf_text, conf_job = text, job
        elif yaml.safe_load(text) != yaml.safe_load(conf_text):
            raise FeatureError(
                f"parts {conf_job} and {job} of {nj} were extracted with different configs "
                f"({paths['dir']}/fbank.{{{conf_job},{job}}}.yaml); "
                f"re-run the jobs with --overwrite true"
            )
        scp.update(part_scp)
        shape.update(part_shape)
    dims = {",".join(v.split(",")[1:]) for v in shape.values()}
    if len(dims) > 1:
        raise FeatureError(f"parts in {out_dir}/split{nj} have different feature dims {dims}")
    return scp, shape, conf_text or "", rejects


def merge_parts(
    data_dir: PathLike,
    out_dir: PathLike,
    nj: int,
    overwrite: bool = False,
    on_error: str = "fail",
    allow_commands: bool = False,
) -> Path:
    """Merge the ``nj`` parts into ``out_dir/feats.scp`` and ``feats_shape``.

    With ``on_error="reject"`` utterances the parts rejected are left out of every
    file of the dump (feats.scp, feats_shape and the copied data files) and listed in
    ``out_dir/reject_list`` (``<utt> <reason>``); otherwise a rejected utterance is an
    error. ``allow_commands`` lets the copied wav.scp hold commands (none is run).

    Also copies the data directory's files (wav.scp, text, utt2*, spk2*) and the
    frontend config (``fbank.yaml``) into ``out_dir`` and validates the result. Only
    files whose content would change are written (all of them with ``overwrite``), so a
    repeated merge rewrites nothing; ``feats.scp`` is written last, its presence means
    the merge finished. If ``feats.scp`` covers exactly the data directory's utterances
    but the parts are gone, it is kept and reported.
    """
    data_dir = Path(data_dir)
    out_dir = Path(out_dir).resolve()
    if data_dir.resolve() == out_dir:
        raise FeatureError(f"--out_dir must differ from --data_dir ({data_dir})")
    _check_on_error(on_error)
    reject = on_error == "reject"
    utts = [u for u, _, _ in read_wav_scp(data_dir)]
    parts = split_utterances(utts, nj)
    feats_scp = out_dir / "feats.scp"
    reject_list = out_dir / "reject_list"

    if feats_scp.is_file() and not overwrite:
        existing = read_kaldi_map(feats_scp)
        old_rejects = _read_rejects(reject_list) if reject else {}
        if set(existing) == set(utts) - set(old_rejects):
            try:
                _collect_parts(out_dir, nj, parts, reject)
            except FeatureError as e:
                logging.warning(
                    f"{feats_scp} covers the {len(utts)} utterances of {data_dir}; kept, "
                    f"but it cannot be checked against the parts: {e}"
                )
                return feats_scp
        else:
            logging.warning(
                f"{feats_scp} covers {len(existing)} utterances, {data_dir} has "
                f"{len(utts)} (or other ids): merging again"
            )

    scp, shape, conf_text, rejects = _collect_parts(out_dir, nj, parts, reject)
    ordered = sorted(scp)
    targets = _data_file_texts(data_dir, set(ordered) if rejects else None)
    targets["fbank.yaml"] = conf_text
    if reject:
        targets["reject_list"] = "".join(f"{u} {rejects[u]}\n" for u in sorted(rejects))
    targets["feats_shape"] = "".join(f"{u} {shape[u]}\n" for u in ordered)
    scp_text = "".join(f"{u} {scp[u]}\n" for u in ordered)

    def changed(name: str, text: str) -> bool:
        return overwrite or _read_text_or_none(out_dir / name) != text

    written = [name for name, text in targets.items() if changed(name, text)]
    for name in written:
        atomic_write_text(out_dir / name, targets[name])
    try:
        validate_data_dir(out_dir, allow_commands=allow_commands)
    except DataDirError as e:
        raise FeatureError(f"the copy of {data_dir} in {out_dir} is not valid: {e}") from e
    if not reject and reject_list.is_file():
        reject_list.unlink()  # stale: this dump holds every utterance
        written.append("(removed reject_list)")
    if changed("feats.scp", scp_text):
        atomic_write_text(feats_scp, scp_text)
        written.append("feats.scp")
    if rejects:
        logging.warning(
            f"{len(rejects)} utterance(s) of {data_dir} rejected for faulty audio and left "
            f"out of {out_dir}; listed in {reject_list}"
        )

    if written:
        logging.info(
            f"merged {nj} parts into {feats_scp}: {len(ordered)} utterances; "
            f"wrote {' '.join(written)}"
        )
    else:
        logging.info(f"{feats_scp} is up to date ({len(ordered)} utterances); nothing to do")
    return feats_scp


def subset_dump(
    data_dir: PathLike,
    superset_dir: PathLike,
    out_dir: PathLike,
    on_error: str = "fail",
    allow_commands: bool = False,
) -> Path:
    """Dump of ``data_dir`` taken from the finished dump ``superset_dir`` of a larger set.

    The cross-validation folds of a corpus are subsets of one set: features are
    extracted once (for the superset) and each fold's ``feats.scp`` / ``feats_shape``
    point into the same ark files. Writes the same files as :func:`merge_parts`; with
    ``on_error="reject"`` the utterances of the superset's ``reject_list`` are left
    out and listed in this dump's ``reject_list``.
    """
    _check_on_error(on_error)
    data_dir, superset_dir = Path(data_dir), Path(superset_dir)
    out_dir = Path(out_dir)
    src_scp = superset_dir / "feats.scp"
    if not src_scp.is_file():
        raise FeatureError(f"{src_scp}: missing; extract the features of {superset_dir.name} first")
    scp = read_kaldi_map(src_scp)
    shape = read_kaldi_map(superset_dir / "feats_shape")
    every = sorted(u for u, _, _ in read_wav_scp(data_dir))
    super_rejects = _read_rejects(superset_dir / "reject_list") if on_error == "reject" else {}
    rejects = {u: super_rejects[u] for u in every if u in super_rejects}
    utts = [u for u in every if u not in rejects]
    missing = [u for u in utts if u not in scp or u not in shape]
    if missing:
        raise FeatureError(
            f"{data_dir}: utterance {missing[0]} is not in {src_scp}"
            + (f" ({len(missing)} utterances in all)" if len(missing) > 1 else "")
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in _data_file_texts(data_dir, set(utts) if rejects else None).items():
        atomic_write_text(out_dir / name, text)
    if on_error == "reject":
        atomic_write_text(out_dir / "reject_list", "".join(f"{u} {r}\n" for u, r in rejects.items()))
    else:
        _unlink_quietly(out_dir / "reject_list")
    atomic_write_text(out_dir / "fbank.yaml", (superset_dir / "fbank.yaml").read_text(encoding="utf-8"))
    atomic_write_text(out_dir / "feats_shape", "".join(f"{u} {shape[u]}\n" for u in utts))
    try:
        validate_data_dir(out_dir, allow_commands=allow_commands)
    except DataDirError as e:
        raise FeatureError(f"the copy of {data_dir} in {out_dir} is not valid: {e}") from e
    atomic_write_text(out_dir / "feats.scp", "".join(f"{u} {scp[u]}\n" for u in utts))
    logging.info(f"{out_dir / 'feats.scp'}: {len(utts)} utterances taken from {src_scp}")
    if rejects:
        logging.warning(
            f"{len(rejects)} utterance(s) of {data_dir} were rejected in {superset_dir}; "
            f"left out, listed in {out_dir / 'reject_list'}"
        )
    return out_dir / "feats.scp"


def iter_feats(feats_scp: PathLike) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield ``(utt, matrix)`` from a feats.scp, naming the line of any unreadable entry."""
    feats_scp = Path(feats_scp)
    with feats_scp.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise FeatureError(f"{feats_scp}:{lineno}: expected '<utt> <ark>:<offset>'")
            utt, loc = parts[0], parts[1].strip()
            try:
                mat = kaldiio.load_mat(loc)
            except Exception as e:
                raise FeatureError(
                    f"{feats_scp}:{lineno}: utterance {utt}: cannot read {loc}: {e}"
                ) from e
            yield utt, mat

