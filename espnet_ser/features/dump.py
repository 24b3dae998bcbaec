"""Feature dumps of a Kaldi data directory for any :class:`~.extractor.Extractor`: job J of nj
writes ``split<nj>/feats.J.{ark,scp}``, ``feats_shape.J`` (``<utt> <frames>,<dim>``), ``<name>.J.yaml``
and ``reject.J``; the merge ``feats.scp feats_shape <name>.yaml [reject_list]`` and the data files."""

import logging
import time
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import kaldiio
import numpy as np
import yaml

from espnet_ser.data.datadir import DataDirError, spk2utt_from_utt2spk, validate_data_dir
from espnet_ser.features.audio import AudioError, read_utterance
from espnet_ser.features.extractor import Extractor, FeatureError
from espnet_ser.utils.io import atomic_path, atomic_write_text, read_kaldi_map
from espnet_ser.utils.jobs import split_utterances

PathLike = Union[str, Path]
CONFIG_NAMES = ("fbank", "wave", "ssl_states")  # <name>.yaml of the extractors' dumps
_COPIED_FILES, _COPIED_PREFIXES = ("wav.scp", "text"), ("utt2", "spk2")


def config_name(conf: Mapping) -> str:
    """The extractor name of a dump config: its ``extractor`` key, ``fbank`` without one."""
    return str(conf.get("extractor", "fbank"))


def _configs(directory: Path, suffix: str = "") -> List[Path]:
    return [p for p in (directory / f"{n}{suffix}.yaml" for n in CONFIG_NAMES) if p.is_file()]


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dump_config_file(dump_dir: PathLike) -> Path:
    """The extractor config of a finished dump: ``<name>.yaml`` (or an old dump's fbank.yaml)."""
    found = _configs(Path(dump_dir))
    if len(found) != 1:
        names = (" ".join(p.name for p in found)
                 or "none of " + " ".join(f"{n}.yaml" for n in CONFIG_NAMES))
        raise FeatureError(f"{dump_dir}: expected one extractor config, found {names}")
    return found[0]


def dump_config(dump_dir: PathLike) -> Dict:
    return _load(dump_config_file(dump_dir)) or {}


def read_wav_scp(data_dir: PathLike) -> List[Tuple[str, str, str]]:
    """``(utt, entry, "<wav.scp>:<line>")`` for every line of data_dir/wav.scp."""
    if (Path(data_dir) / "segments").is_file():
        raise FeatureError(f"{data_dir}/segments exists: segmented recordings are not supported; "
                           "cut the utterances into their own files in data preparation")
    wav_scp = Path(data_dir) / "wav.scp"
    mapping = read_kaldi_map(wav_scp)  # sorted, unique, non-empty (else DataDirError)
    return [(utt, entry, f"{wav_scp}:{i}") for i, (utt, entry) in enumerate(mapping.items(), 1)]


def part_paths(out_dir: PathLike, nj: int, job: int, name: str = "fbank") -> Dict[str, Path]:
    """Absolute paths of the files of part ``job`` of ``nj``."""
    split = Path(out_dir).resolve() / f"split{nj}"
    return {"dir": split, "ark": split / f"feats.{job}.ark", "scp": split / f"feats.{job}.scp",
            "shape": split / f"feats_shape.{job}", "conf": split / f"{name}.{job}.yaml",
            "reject": split / f"reject.{job}"}


def _read_rejects(path: Path) -> Dict[str, str]:
    return read_kaldi_map(path, check_sorted=False) if path.is_file() else {}


def _lines(mapping: Mapping[str, str], keys=None) -> str:
    return "".join(f"{k} {mapping[k]}\n" for k in (mapping if keys is None else keys))


def _in_all(utts: Sequence[str]) -> str:
    return f" ({len(utts)} utterances in all)" if len(utts) > 1 else ""


def _check_on_error(on_error: str) -> bool:
    if on_error not in ("fail", "reject"):
        raise ValueError(f"on_error must be 'fail' or 'reject', got {on_error!r}")
    return on_error == "reject"


def extract_part(data_dir: PathLike, out_dir: PathLike, extractor: Extractor, nj: int, job: int,
                 channel: Optional[int] = None, overwrite: bool = False,
                 allow_commands: bool = False, resample_to_fs: bool = False,
                 on_error: str = "fail") -> Path:
    """Extract part ``job`` (1-based) of ``nj`` (``on_error="reject"``: faulty audio listed in
    ``reject.<job>``); return its scp, written last. Without ``overwrite`` a finished part with
    the same config is kept, one with another config is an error."""
    if not 1 <= job <= nj:
        raise ValueError(f"--job must be in 1..{nj}, got {job}")
    reject = _check_on_error(on_error)
    entries = read_wav_scp(data_dir)
    utts = split_utterances([u for u, _, _ in entries], nj)[job - 1]
    wanted = set(utts)
    todo = [e for e in entries if e[0] in wanted]
    paths = part_paths(out_dir, nj, job, extractor.name)
    paths["dir"].mkdir(parents=True, exist_ok=True)
    tag = f"part {job}/{nj}"

    conf_text = yaml.safe_dump(dict(extractor.conf), sort_keys=False)
    olds = _configs(paths["dir"], f".{job}")
    other = [p for p in olds if _load(p) != yaml.safe_load(conf_text)]
    if other and not overwrite:
        raise FeatureError(f"{paths['dir']} holds features extracted with another config "
                           f"({other[0]}: {_load(other[0])}); use --overwrite true or another "
                           "--out_dir")
    if olds and not other and not overwrite:
        try:
            _read_part(paths["dir"].parent, nj, job, utts, reject)
        except (FeatureError, DataDirError):
            pass  # unfinished, or made with on_error="reject" and now without: recomputed
        else:
            logging.info(f"{tag}: {paths['scp']} already holds its {len(utts)} utterances; kept")
            return paths["scp"]

    lines, shapes, rejected = [], {}, {}
    n_resampled, n_total, start, audio_seconds = 0, len(todo), time.time(), 0.0
    log_every = max(1, -(-n_total // 10))
    logging.info(f"{tag}: extracting {n_total} utterances to {paths['ark']}")
    with atomic_path(paths["ark"]) as tmp_ark, tmp_ark.open("wb") as ark:
        for i, (utt, entry, where) in enumerate(todo, 1):
            try:
                wave, rate = read_utterance(utt, entry, where, extractor.fs, channel,
                                            extractor.min_samples, allow_commands=allow_commands,
                                            resample_to_fs=resample_to_fs)
            except AudioError as e:
                if not reject or e.reason is None:
                    raise
                logging.warning(f"{tag}: rejected: {e}")
                rejected[utt] = f"{e.reason}: {' '.join(str(e).split())}"
                continue
            if rate != extractor.fs:
                n_resampled += 1
                logging.debug(f"{where}: utterance {utt}: resampled {rate} -> {extractor.fs} Hz")
            feats = extractor.extract(wave, extractor.fs)
            offset = ark.tell() + len(f"{utt} ".encode("utf-8"))  # as kaldiio's scp
            kaldiio.save_ark(ark, {utt: feats}, compression_method=extractor.compression_method)
            lines.append(f"{utt} {paths['ark']}:{offset}\n")
            shapes[utt] = ",".join(str(d) for d in feats.shape)  # ESPnet's shape format
            audio_seconds += len(wave) / extractor.fs
            if i % log_every == 0 or i == n_total:
                elapsed = max(time.time() - start, 1e-9)
                logging.info(f"{tag}: {i}/{n_total} utterances ({100 * i // n_total}%), "
                             f"{i / elapsed:.1f} utt/s, real-time factor "
                             f"{elapsed / max(audio_seconds, 1e-9):.4f}")
        # the old scp goes before the ark is replaced: a crash leaves the part unfinished
        paths["scp"].unlink(missing_ok=True)
    atomic_write_text(paths["shape"], _lines(shapes))
    if rejected:
        atomic_write_text(paths["reject"], _lines(rejected))
    else:
        paths["reject"].unlink(missing_ok=True)
    atomic_write_text(paths["conf"], conf_text)
    for p in olds:
        if p != paths["conf"]:
            p.unlink()
    atomic_write_text(paths["scp"], "".join(lines))
    if n_resampled:
        logging.info(f"{tag}: resampled {n_resampled} utterance(s) to {extractor.fs} Hz")
    if rejected:
        logging.warning(f"{tag}: rejected {len(rejected)} utterance(s) with faulty audio; "
                        f"listed in {paths['reject']}")
    return paths["scp"]


def _data_file_texts(data_dir: Path, keep: Optional[set] = None) -> Dict[str, str]:
    """Texts of the data files a dump copies (wav.scp, text, utt2*, spk2*); with ``keep``
    only those utterances (and their speakers)."""
    files = [p for p in sorted(data_dir.iterdir()) if p.is_file() and not p.name.startswith(".")
             and (p.name in _COPIED_FILES or p.name.startswith(_COPIED_PREFIXES))]
    if keep is None:
        return {src.name: src.read_text(encoding="utf-8") for src in files}
    kept: Dict[str, Dict[str, str]] = {}
    for src in (p for p in files if not p.name.startswith("spk2")):
        mapping = read_kaldi_map(src, allow_empty_value=(src.name == "text"))
        kept[src.name] = {u: v for u, v in mapping.items() if u in keep}
    utt2spk = kept.get("utt2spk", {})  # a required file: the copy is validated
    for src in (p for p in files if p.name.startswith("spk2")):
        kept[src.name] = (spk2utt_from_utt2spk(utt2spk) if src.name == "spk2utt" else
                          {k: v for k, v in read_kaldi_map(src).items() if k in utt2spk.values()})
    return {name: _lines(m, sorted(m)) for name, m in kept.items()}


def _check_assigned(found, utts: Sequence[str], what: str, rerun: str) -> None:
    stray = sorted(set(found) - set(utts))
    if stray:
        raise FeatureError(f"{what} utterance {stray[0]} which the data directory does not "
                           f"assign to it ({rerun} --overwrite true)")


def _read_part(out_dir: Path, nj: int, job: int, all_utts: Sequence[str], reject: bool
               ) -> Tuple[Dict[str, str], Dict[str, str], Path, Dict[str, str]]:
    """Scp, shape, config file and rejects of part ``job``, checked to cover its utterances
    (rejects are an error unless ``reject``)."""
    paths, hint = part_paths(out_dir, nj, job), f"run extract_feats with --nj {nj} --job {job}"
    for key in ("scp", "shape", "ark"):
        if not paths[key].is_file():
            raise FeatureError(f"part {job} of {nj} is missing: no {paths[key]} ({hint})")
    confs = _configs(paths["dir"], f".{job}")
    if len(confs) != 1:
        raise FeatureError(f"part {job} of {nj} is missing: no single extractor config "
                           f"{paths['dir']}/<extractor>.{job}.yaml ({hint})")
    rejects = _read_rejects(paths["reject"])
    if rejects:
        first = next(iter(rejects))
        if not reject:
            raise FeatureError(
                f"part {job} of {nj} rejected {len(rejects)} utterance(s) "
                f"(first: {first} {rejects[first]}; see {paths['reject']}); "
                "merge with --on_error reject to leave them out, or fix the audio "
                f"and {hint} --overwrite true")
        _check_assigned(rejects, all_utts, f"part {job} of {nj}: {paths['reject']} lists", hint)
    utts = [u for u in all_utts if u not in rejects]
    scp, shape = read_kaldi_map(paths["scp"]), read_kaldi_map(paths["shape"])
    for got, src in ((scp, paths["scp"]), (shape, paths["shape"])):
        missing = [u for u in utts if u not in got]
        if missing:
            raise FeatureError(
                f"part {job} of {nj}: utterance {missing[0]} is missing from {src}"
                f"{_in_all(missing)}; the data directory changed or the job failed ({hint})")
        _check_assigned(got, utts, f"part {job} of {nj}: {src} holds", hint)
    return scp, shape, confs[0], rejects


def _collect_parts(out_dir: Path, nj: int, parts: Sequence[Sequence[str]], reject: bool = False
                   ) -> Tuple[Dict[str, str], Dict[str, str], str, Dict[str, str]]:
    """The merged scp, shape, common config text and rejects of the parts (see _read_part)."""
    scp, shape, rejects = {}, {}, {}  # utt -> ark location, shape, reject reason
    conf_text, conf_file, conf_job = None, None, None
    for job, utts in enumerate(parts, 1):
        part_scp, part_shape, conf, part_rejects = _read_part(out_dir, nj, job, utts, reject)
        text = conf.read_text(encoding="utf-8")
        if conf_text is None:
            conf_text, conf_file, conf_job = text, conf, job
        elif yaml.safe_load(text) != yaml.safe_load(conf_text):
            raise FeatureError(f"parts {conf_job} and {job} of {nj} were extracted with different "
                               f"configs ({conf_file}, {conf}); re-run the jobs with "
                               "--overwrite true")
        scp.update(part_scp)
        shape.update(part_shape)
        rejects.update(part_rejects)
    dims = {",".join(v.split(",")[1:]) for v in shape.values()}
    if len(dims) > 1:
        raise FeatureError(f"parts in {out_dir}/split{nj} have different feature dims {dims}")
    return scp, shape, conf_text or "", rejects


def _write_dump(data_dir: Path, out_dir: Path, conf_text: str, scp: Mapping[str, str],
                shape: Mapping[str, str], utts: Sequence[str], rejects: Optional[Dict[str, str]],
                overwrite: bool, allow_commands: bool) -> List[str]:
    """Write the changed dump files of ``utts`` (all with ``overwrite``), drop stale ones,
    validate, write feats.scp last; return what was written."""
    targets = _data_file_texts(data_dir, set(utts) if rejects else None)
    targets[f"{config_name(yaml.safe_load(conf_text) or {})}.yaml"] = conf_text
    if rejects is not None:
        targets["reject_list"] = _lines(rejects, sorted(rejects))
    targets["feats_shape"] = _lines(shape, utts)

    def write_changed(texts: Mapping[str, str]) -> List[str]:
        names = [n for n, text in texts.items() if overwrite or not (out_dir / n).is_file()
                 or (out_dir / n).read_text(encoding="utf-8") != text]
        for name in names:
            atomic_write_text(out_dir / name, texts[name])
        return names

    written = write_changed(targets)
    for name in ["reject_list"] + [f"{n}.yaml" for n in CONFIG_NAMES]:
        if name not in targets and (out_dir / name).is_file():
            (out_dir / name).unlink()
            written.append(f"(removed {name})")
    try:
        validate_data_dir(out_dir, allow_commands=allow_commands)
    except DataDirError as e:
        raise FeatureError(f"the copy of {data_dir} in {out_dir} is not valid: {e}") from e
    return written + write_changed({"feats.scp": _lines(scp, utts)})


def merge_dump(data_dir: PathLike, out_dir: PathLike, nj: int, overwrite: bool = False,
               on_error: str = "fail", allow_commands: bool = False) -> Path:
    """Merge the ``nj`` parts into ``out_dir`` (validated; rejects are an error unless
    ``on_error="reject"``: then listed in ``reject_list``), writing only changed files (all with
    ``overwrite``), feats.scp last; one that covers the data directory is kept without parts."""
    data_dir, out_dir = Path(data_dir), Path(out_dir).resolve()
    if data_dir.resolve() == out_dir:
        raise FeatureError(f"--out_dir must differ from --data_dir ({data_dir})")
    reject = _check_on_error(on_error)
    utts = [u for u, _, _ in read_wav_scp(data_dir)]
    parts = split_utterances(utts, nj)
    feats_scp, collected = out_dir / "feats.scp", None
    if feats_scp.is_file() and not overwrite:
        existing = read_kaldi_map(feats_scp)
        old_rejects = _read_rejects(out_dir / "reject_list") if reject else {}
        if set(existing) == set(utts) - set(old_rejects):
            try:
                collected = _collect_parts(out_dir, nj, parts, reject)
            except FeatureError as e:
                logging.warning(f"{feats_scp} covers the {len(utts)} utterances of {data_dir}; "
                                f"kept, but it cannot be checked against the parts: {e}")
                return feats_scp
        else:
            logging.warning(f"{feats_scp} covers {len(existing)} utterances, {data_dir} has "
                            f"{len(utts)} (or other ids): merging again")

    scp, shape, conf_text, rejects = collected or _collect_parts(out_dir, nj, parts, reject)
    ordered = sorted(scp)
    written = _write_dump(data_dir, out_dir, conf_text, scp, shape, ordered,
                          rejects if reject else None, overwrite, allow_commands)
    if rejects:
        logging.warning(f"{len(rejects)} utterance(s) of {data_dir} rejected for faulty audio and "
                        f"left out of {out_dir}; listed in {out_dir / 'reject_list'}")
    if written:
        logging.info(f"merged {nj} parts into {feats_scp}: {len(ordered)} utterances; "
                     f"wrote {' '.join(written)}")
    else:
        logging.info(f"{feats_scp} is up to date ({len(ordered)} utterances); nothing to do")
    return feats_scp


merge_parts = merge_dump  # the name before dumps took any extractor


def subset_dump(data_dir: PathLike, superset_dir: PathLike, out_dir: PathLike,
                on_error: str = "fail", allow_commands: bool = False) -> Path:
    """Dump of ``data_dir`` pointing into the arks of the finished dump ``superset_dir`` of a
    larger set (cross-validation folds); with ``on_error="reject"`` its rejects are left out."""
    reject = _check_on_error(on_error)
    data_dir, superset_dir, out_dir = Path(data_dir), Path(superset_dir), Path(out_dir)
    src_scp = superset_dir / "feats.scp"
    if not src_scp.is_file():
        raise FeatureError(f"{src_scp}: missing; extract the features of {superset_dir.name} first")
    scp, shape = read_kaldi_map(src_scp), read_kaldi_map(superset_dir / "feats_shape")
    every = sorted(u for u, _, _ in read_wav_scp(data_dir))
    super_rejects = _read_rejects(superset_dir / "reject_list") if reject else {}
    rejects = {u: super_rejects[u] for u in every if u in super_rejects}
    utts = [u for u in every if u not in rejects]
    missing = [u for u in utts if u not in scp or u not in shape]
    if missing:
        raise FeatureError(f"{data_dir}: utterance {missing[0]} is not in {src_scp}{_in_all(missing)}")
    conf_text = dump_config_file(superset_dir).read_text(encoding="utf-8")
    _write_dump(data_dir, out_dir, conf_text, scp, shape, utts, rejects if reject else None,
                True, allow_commands)
    logging.info(f"{out_dir / 'feats.scp'}: {len(utts)} utterances taken from {src_scp}")
    if rejects:
        logging.warning(f"{len(rejects)} utterance(s) of {data_dir} were rejected in "
                        f"{superset_dir}; left out, listed in {out_dir / 'reject_list'}")
    return out_dir / "feats.scp"


def iter_feats(feats_scp: PathLike) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield ``(utt, matrix)`` from a feats.scp, naming the line of any unreadable entry."""
    with open(feats_scp, encoding="utf-8") as f:
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
                raise FeatureError(f"{feats_scp}:{lineno}: utterance {utt}: cannot read {loc}: "
                                   f"{e}") from e
            yield utt, mat
