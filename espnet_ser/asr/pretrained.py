"""Turn a stock ESPnet ASR model (model-zoo layout) into an ``asr_ser`` model with emotion
tokens (rows: mean of the ordinary tokens' rows), and make training configs for it.
Writes :data:`OUTPUT_FILES` (described in egs/iemocap/README.md)."""

import argparse
import contextlib
import copy
import dataclasses
import inspect
import itertools
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

from espnet_ser.data.datadir import emotion_of_token
from espnet_ser.utils.io import (PathLike, atomic_copy, atomic_torch_save, atomic_write_bytes,
                                 atomic_write_text, sha256sum)
from espnet_ser.utils.offline import quiet_nltk_downloads

SOS_EOS = "<sos/eos>"
SPECIAL_TOKENS = ("<blank>", "<unk>", SOS_EOS)
# State-dict entries indexed by the vocabulary along their first axis (decoder, CTC).
VOCAB_TENSORS = ("decoder.embed.0.weight", "decoder.output_layer.weight", "decoder.output_layer.bias",
                 "ctc.ctc_lo.weight", "ctc.ctc_lo.bias")
# Entries naming a training run's data and output, cleared so the config serves as ``--config``.
RUN_SPECIFIC_KEYS = {"output_dir": None, "train_data_path_and_name_and_type": [],
                     "valid_data_path_and_name_and_type": [], "train_shape_file": [],
                     "valid_shape_file": [], "init_param": []}
OUTPUT_FILES = ("config.yaml", "model.pth", "tokens.txt", "bpe.model", "feats_stats.npz",
                "feats_config.yaml", "info.json")


class PretrainedError(ValueError):
    """The stock model, its files or the requested extension cannot be used."""


@contextlib.contextmanager
def reraise_as_pretrained(errors=(OSError, ValueError), prefix: str = ""):
    """Turn ``errors`` raised inside the block into PretrainedError(prefix + message)."""
    try:
        yield
    except errors as e:
        raise PretrainedError(f"{prefix}{e}") from e


def resolve_path(value: Optional[str], key: str, config: Path, flag: str,
                 override: Optional[PathLike] = None) -> Path:
    """The file ``config`` names under ``key``, or ``override`` (the command line's ``flag``);
    a relative value is looked up in the current directory, then the config's ancestors."""
    if override is not None:
        p = Path(override)
        if not p.is_file():
            raise PretrainedError(f"{flag} {p}: no such file")
        return p.resolve()
    if value is None or str(value).strip() == "":
        raise PretrainedError(f"{config}: {key} is not set; give {flag}")
    p = Path(str(value))
    candidates = [p] if p.is_absolute() else list(
        dict.fromkeys(d / p for d in [Path.cwd(), *config.resolve().parents]))
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise PretrainedError(f"{config}: {key} {value} not found (looked for {looked}); give {flag} <path>")


def read_token_list(path: PathLike) -> List[str]:
    """A token list read as ESPnet does (blank lines kept, then refused: they would shift the
    stock model's rows), unlike :func:`espnet_ser.utils.io.read_token_list`."""
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip() for line in f]
    check_token_list(tokens, str(path))
    return tokens


def check_token_list(tokens: Sequence[str], where: str) -> None:
    if not tokens:
        raise PretrainedError(f"{where}: the token list is empty")
    seen = set()
    for i, t in enumerate(tokens):
        if t == "" or any(c.isspace() for c in t):
            raise PretrainedError(f"{where}: token {i} ({t!r}) is empty or holds white space")
        if t in seen:
            raise PretrainedError(f"{where}: token {t!r} occurs twice")
        seen.add(t)


def extend_token_list(token_list: Sequence[str], add_tokens: Sequence[str],
                      model_conf: Optional[Mapping] = None, where: str = "token list"
                      ) -> Tuple[List[str], List[int]]:
    """Insert ``add_tokens`` before a last <sos/eos> (else append them); return the new
    list and the old-to-new ids. A token already in the list is an error."""
    token_list = list(token_list)
    check_token_list(token_list, where)
    if not add_tokens:
        raise PretrainedError("no tokens to add")
    check_token_list(list(add_tokens), "--add_tokens")
    present = [t for t in add_tokens if t in token_list]
    if present:
        ids = ", ".join(str(token_list.index(t)) for t in present)
        raise PretrainedError(f"{where}: already holds {' '.join(present)} (index {ids}); "
                              "was the model extended already?")
    # the ids ESPnetASRModel uses for <sos> and <eos>: by name, else the last
    syms = [(model_conf or {}).get(key, SOS_EOS) for key in ("sym_sos", "sym_eos")]
    sos, eos = (token_list.index(s) if s in token_list else len(token_list) - 1 for s in syms)
    last = len(token_list) - 1
    if sos == eos == last:
        at = last
    elif sos != last and eos != last:
        at = len(token_list)
    else:
        raise PretrainedError(f"{where}: <sos> ({token_list[sos]}) and <eos> ({token_list[eos]}) "
                              "are not both last; cannot place new tokens")
    new_list = token_list[:at] + list(add_tokens) + token_list[at:]
    index = {t: i for i, t in enumerate(new_list)}
    return new_list, [index[t] for t in token_list]


def _sp_processor(data: bytes, where: str):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(data)
    except Exception as e:
        raise PretrainedError(f"{where}: sentencepiece cannot load the model ({e})") from e
    return sp


def extend_sentencepiece(path: PathLike, add_tokens: Sequence[str]) -> bytes:
    """The serialized model of ``path`` with ``add_tokens`` appended as USER_DEFINED pieces
    (each one piece, other text segmented as before), or PretrainedError."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2
    path, proto = Path(path), sp_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf DecodeError
        raise PretrainedError(f"{path}: not a sentencepiece model ({e})") from e
    if not len(proto.pieces):
        raise PretrainedError(f"{path}: not a sentencepiece model (no pieces)")
    pieces = {p.piece for p in proto.pieces}
    present = [t for t in add_tokens if t in pieces]
    if present:
        raise PretrainedError(f"{path}: already has the piece(s) {' '.join(present)}")
    for tok in add_tokens:
        proto.pieces.add(piece=tok, score=0.0, type=sp_pb2.ModelProto.SentencePiece.USER_DEFINED)
    data = proto.SerializeToString()
    sp = _sp_processor(data, str(path))
    for tok in add_tokens:
        if not is_single_piece(sp, tok):
            raise PretrainedError(f"{path}: after adding {tok} as a user-defined piece, 'a {tok} b' "
                                  f"is segmented as {sp.EncodeAsPieces(f'a {tok} b')}")
    return data


def is_single_piece(sp, token: str) -> bool:
    """Whether ``sp`` segments ``token`` in running text as one piece whose id is not <unk>."""
    tid = sp.PieceToId(token)
    return (tid != sp.unk_id() and sp.IdToPiece(tid) == token
            and sp.EncodeAsIds(f"a {token} b").count(tid) == 1)


def grow_state_dict(old: Mapping[str, torch.Tensor], new_shapes: Mapping[str, torch.Size],
                    old_to_new: Sequence[int], mean_ids: Sequence[int], where: str = "state dict"
                    ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``old`` fitted to ``new_shapes``, and the grown names: :data:`VOCAB_TENSORS` grow along
    axis 0, old row ``i`` to row ``old_to_new[i]``, new rows the mean of rows ``mean_ids``."""
    missing = sorted(set(new_shapes) - set(old))
    unexpected = sorted(set(old) - set(new_shapes))
    if missing or unexpected:
        raise PretrainedError(f"{where} does not fit the extended model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    v_old, v_new = len(old_to_new), None
    out, grown = {}, []
    for name, tensor in old.items():
        shape = torch.Size(new_shapes[name])
        if tensor.shape == shape:
            out[name] = tensor.clone()
            continue
        if name not in VOCAB_TENSORS:
            raise PretrainedError(f"{where}: {name} changes shape {tuple(tensor.shape)} -> "
                                  f"{tuple(shape)} with the vocabulary, but only "
                                  f"{', '.join(VOCAB_TENSORS)} can be grown")
        if tensor.shape[0] != v_old or tensor.shape[1:] != shape[1:] or shape[0] < v_old:
            raise PretrainedError(f"{where}: {name} has shape {tuple(tensor.shape)}; expected "
                                  f"({v_old}, ...) growing to {tuple(shape)} along the first axis")
        v_new = shape[0] if v_new is None else v_new
        if shape[0] != v_new:
            raise PretrainedError(f"{where}: {name} grows to {shape[0]} rows, others to {v_new}")
        new = torch.empty(shape, dtype=tensor.dtype)
        new[:] = tensor[list(mean_ids)].double().mean(dim=0).to(tensor.dtype)
        new[list(old_to_new)] = tensor
        out[name] = new
        grown.append(name)
    return out, grown


def fbank_config_of(frontend: Optional[str], frontend_conf: Optional[Mapping], where: str) -> Dict:
    """The stock DefaultFrontend arguments in FbankExtractor's format, with ESPnet's
    defaults filled in (``None`` ones as what they stand for: n_fft, 0, fs / 2)."""
    import humanfriendly
    from espnet2.asr.frontend.default import DefaultFrontend

    from espnet_ser.features.fbank import FRONTEND_KEYS
    if frontend != "default":
        raise PretrainedError(f"{where}: frontend is {frontend!r}; only 'default' can be dumped")
    conf = dict(frontend_conf or {})
    params = inspect.signature(DefaultFrontend.__init__).parameters
    if conf.get("apply_stft", True) is not True:
        raise PretrainedError(f"{where}: frontend_conf.apply_stft is false")
    enh = conf.get("frontend_conf", params["frontend_conf"].default)
    if enh is not None and (enh.get("use_wpe") or enh.get("use_beamformer")):
        raise PretrainedError(f"{where}: frontend_conf enables WPE / beamforming, "
                              "which a filterbank dump cannot hold")
    unknown = sorted(set(conf) - set(FRONTEND_KEYS) - {"apply_stft", "frontend_conf"})
    if unknown:
        raise PretrainedError(f"{where}: unknown frontend_conf key(s) {', '.join(unknown)}")
    out = {key: conf.get(key, params[key].default) for key in FRONTEND_KEYS}
    if isinstance(out["fs"], str):
        out["fs"] = int(humanfriendly.parse_size(out["fs"]))
    half = out["fs"] / 2
    implied = {"win_length": out["n_fft"], "fmin": 0, "fmax": int(half) if half == int(half) else half}
    out.update({key: value for key, value in implied.items() if out[key] is None})
    return out


def _compare(a: torch.Tensor, b: torch.Tensor) -> Dict:
    if a.shape != b.shape:
        return {"shape": [list(a.shape), list(b.shape)], "equal": False, "max_abs_diff": None}
    diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    return {"equal": bool(torch.equal(a, b)), "max_abs_diff": diff}


def check_frontend(stock_model, extractor, n_samples: int = 24000, seed: int = 0) -> Dict:
    """Compare FbankExtractor with the stock model's frontend on a pseudo-random wave."""
    wave = np.random.default_rng(seed).standard_normal(n_samples).astype(np.float32) * 0.1
    ref = torch.from_numpy(extractor(wave))
    with torch.no_grad():
        feats, lens = stock_model.frontend(torch.from_numpy(wave)[None], torch.tensor([n_samples]))
    return _compare(feats[0, : int(lens[0])], ref)


@torch.no_grad()
def compare_models(stock, grown, old_to_new: Sequence[int], stock_input: Tuple[torch.Tensor, torch.Tensor],
                   grown_input: Tuple[torch.Tensor, torch.Tensor], tokens: Sequence[int]) -> Dict:
    """Encoder outputs and decoder / CTC logits of the old tokens (``tokens`` teacher-forced
    after <sos>) of two models, and at how many positions a new token wins."""
    stock.eval(), grown.eval()
    enc_s, lens_s = stock.encode(*stock_input)
    enc_g, lens_g = grown.encode(*grown_input)
    idx = torch.tensor(list(old_to_new))
    new_ids = sorted(set(range(grown.vocab_size)) - set(idx.tolist()))
    ys_s = torch.tensor([[stock.sos] + list(tokens)])
    ys_g = torch.tensor([[grown.sos] + [old_to_new[t] for t in tokens]])
    ylens = torch.tensor([ys_s.size(1)])
    dec_s = stock.decoder(enc_s, lens_s, ys_s, ylens)[0]
    dec_g = grown.decoder(enc_g, lens_g, ys_g, ylens)[0]
    ctc_s, ctc_g = stock.ctc.ctc_lo(enc_s), grown.ctc.ctc_lo(enc_g)
    report = {
        "encoder": _compare(enc_s, enc_g),
        "decoder_logits": _compare(dec_s, dec_g[..., idx]),
        "ctc_logits": _compare(ctc_s, ctc_g[..., idx]),
        "sos_eos": [old_to_new[stock.sos], grown.sos, old_to_new[stock.eos], grown.eos],
    }
    if new_ids:
        for key, logits in (("decoder", dec_g), ("ctc", ctc_g)):
            won = torch.isin(logits.argmax(dim=-1), torch.tensor(new_ids))
            report[f"{key}_positions_won_by_new_tokens"] = int(won.sum())
    return report


@dataclasses.dataclass
class StockModel:
    """The files of a stock model, resolved."""
    config: Path
    model_file: Path
    conf: Dict
    tokens: List[str]
    token_source: str
    bpemodel: Path
    stats_file: Optional[Path]
    token_list_file: Optional[Path]


def _check_outputs_are_not_inputs(output_dir: Path, stock: StockModel) -> None:
    inputs = (stock.config, stock.model_file, stock.bpemodel, stock.stats_file, stock.token_list_file)
    for out, src in itertools.product((output_dir / name for name in OUTPUT_FILES), inputs):
        if src is not None and out.exists() and src.exists() and os.path.samefile(out, src):
            raise PretrainedError(f"--output_dir {output_dir} would overwrite the input "
                                  f"{src}; choose another directory")


def read_stock(asr_config: PathLike, asr_model_file: PathLike, bpemodel: Optional[PathLike] = None,
               stats_file: Optional[PathLike] = None, token_list: Optional[PathLike] = None
               ) -> StockModel:
    """Read a stock config, check it describes a supported model and find its files."""
    from espnet_ser.utils.safe_load import load_yaml_config
    config, model_file = Path(asr_config), Path(asr_model_file)
    for path, flag in ((config, "--asr_config"), (model_file, "--asr_model_file")):
        if not path.is_file():
            raise PretrainedError(f"{flag} {path}: no such file")
    with reraise_as_pretrained(ValueError):
        conf = load_yaml_config(config)
    model_name = conf.get("model") or "espnet"
    if model_name != "espnet":
        raise PretrainedError(f"{config}: model is {model_name!r}; only 'espnet' models can be extended")
    if conf.get("decoder") in (None, "transducer"):
        raise PretrainedError(f"{config}: needs an attention decoder, got {conf.get('decoder')!r}")
    if conf.get("token_type", "bpe") != "bpe":
        raise PretrainedError(f"{config}: token_type is {conf.get('token_type')!r}; only "
                              "sentencepiece (bpe) models are supported")
    if conf.get("input_size") is not None:
        raise PretrainedError(f"{config}: input_size is set; the stock model must read raw waves")

    raw_tokens = conf.get("token_list")
    token_list_file = None
    if isinstance(raw_tokens, str) or token_list is not None:
        token_list_file = resolve_path(raw_tokens, "token_list", config, "--token_list", token_list)
        tokens = read_token_list(token_list_file)
        token_source = str(token_list_file)
    elif isinstance(raw_tokens, list):
        tokens = [str(t) for t in raw_tokens]
        check_token_list(tokens, f"{config}: token_list")
        token_source = f"{config.resolve()} (inline)"
    else:
        raise PretrainedError(f"{config}: token_list must be a list or a file path")
    bpe = resolve_path(conf.get("bpemodel"), "bpemodel", config, "--bpemodel", bpemodel)
    stats = None
    if conf.get("normalize") == "global_mvn":
        stats = resolve_path((conf.get("normalize_conf") or {}).get("stats_file"),
                             "normalize_conf.stats_file", config, "--stats_file", stats_file)
    elif stats_file is not None:
        raise PretrainedError(f"--stats_file given but {config} has normalize: {conf.get('normalize')}")
    return StockModel(config, model_file, conf, tokens, token_source, bpe, stats, token_list_file)


def build_stock_model(stock: StockModel, work_dir: Path):
    """The stock model (eval mode, built by ESPnet from the config with resolved paths) and its
    state dict, checked to fit."""
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_ser.utils.safe_load import load_model_state
    conf = dict(copy.deepcopy(stock.conf), token_list=list(stock.tokens), bpemodel=str(stock.bpemodel))
    if stock.stats_file is not None:
        conf["normalize_conf"] = dict(conf.get("normalize_conf") or {}, stats_file=str(stock.stats_file))
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".stock.") as tmp:
        tmp_config = Path(tmp) / "config.yaml"
        tmp_config.write_text(yaml_no_alias_safe_dump(conf, sort_keys=False), encoding="utf-8")
        try:
            model, _ = ASRTask.build_model_from_file(tmp_config, stock.model_file, "cpu")
        except Exception as e:
            raise PretrainedError(f"ESPnet cannot build the model of {stock.config} "
                                  f"with {stock.model_file}: {e}") from e
    with reraise_as_pretrained():  # weights_only=True, a deepspeed ``module`` unwrapped
        state_dict = dict(load_model_state(stock.model_file))
    expected = set(model.state_dict())
    if set(state_dict) != expected:
        raise PretrainedError(f"{stock.model_file} does not match {stock.config}: missing "
                              f"{sorted(expected - set(state_dict))[:5]}, unexpected "
                              f"{sorted(set(state_dict) - expected)[:5]}")
    if list(model.token_list) != stock.tokens:
        raise PretrainedError(f"{stock.config}: ESPnet changed the token list while building the model")
    return model.eval(), state_dict


def extended_config(stock: StockModel, new_tokens: Sequence[str], emotion_tokens: Sequence[str],
                    output_dir: Path) -> Tuple[Dict, List[str]]:
    """The stock config as ``ASRSERTask`` options naming the output files (defaults filled,
    :data:`RUN_SPECIFIC_KEYS` cleared: usable as ``--config``), and the dropped keys."""
    from espnet_ser.tasks.asr_ser import ASRSERTask
    parser = ASRSERTask.get_parser()  # its options' defaults: what ``--config`` may hold
    options = {a.dest for a in parser._actions}  # not set_defaults extras like `required`
    defaults = {k: v for k, v in vars(parser.parse_args([])).items() if k in options}
    dropped = [key for key in stock.conf if key not in defaults]
    conf = {k: copy.deepcopy(v) for k, v in stock.conf.items() if k in defaults}
    conf.update((k, v) for k, v in defaults.items() if k not in conf)  # stock keys keep their order
    conf.update(copy.deepcopy(RUN_SPECIFIC_KEYS))
    conf.update(model="asr_ser", token_type="bpe", token_list=str(output_dir / "tokens.txt"),
                bpemodel=str(output_dir / "bpe.model"),
                model_conf=dict(stock.conf.get("model_conf") or {}, emotion_tokens=list(emotion_tokens)))
    if stock.stats_file is not None:
        conf["normalize_conf"] = dict(stock.conf.get("normalize_conf") or {},
                                      stats_file=str(output_dir / "feats_stats.npz"))
    return conf, dropped


def extend_pretrained(asr_config: PathLike, asr_model_file: PathLike, add_tokens: Sequence[str],
                      output_dir: PathLike, bpemodel: Optional[PathLike] = None,
                      stats_file: Optional[PathLike] = None, token_list: Optional[PathLike] = None,
                      dumped_feats: bool = False, verify: bool = True, atol: float = 1e-5) -> Dict:
    """Write the extended model to ``output_dir`` (nothing before all checks pass); return
    info.json. ``dumped_feats``: the config reads dumped fbank; ``verify``: fail if outputs
    for the old tokens differ from the stock model's by more than ``atol``."""
    quiet_nltk_downloads()
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_ser.features.fbank import FbankExtractor
    from espnet_ser.tasks.asr_ser import ASRSERTask
    stock = read_stock(asr_config, asr_model_file, bpemodel, stats_file, token_list)
    where, add_tokens, old_tokens = str(stock.config), list(add_tokens), stock.tokens
    new_tokens, old_to_new = extend_token_list(
        old_tokens, add_tokens, stock.conf.get("model_conf") or {}, f"{where}: token_list")
    sp_data = extend_sentencepiece(stock.bpemodel, add_tokens)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    output_dir = Path(output_dir).resolve()
    _check_outputs_are_not_inputs(output_dir, stock)

    stock_model, stock_sd = build_stock_model(stock, output_dir)
    emotion_tokens = [t for t in add_tokens if emotion_of_token(t) is not None]
    new_conf, dropped = extended_config(stock, new_tokens, emotion_tokens, output_dir)
    unknown = [k for k in dropped if k not in ("version", "distributed", "required")]
    if unknown:
        logging.warning(f"{where}: dropped key(s) unknown to ASRSERTask: {' '.join(unknown)}")

    # -- frontend: FbankExtractor arguments, checked against the stock frontend
    fbank_conf = fbank_problem = frontend_check = extractor = None
    try:
        fbank_conf = fbank_config_of(stock.conf.get("frontend"), stock.conf.get("frontend_conf"), where)
    except PretrainedError as e:
        if dumped_feats:
            raise
        fbank_problem = str(e)
        logging.warning(f"no feats_config.yaml: {e}")
    if fbank_conf is not None:
        extractor = FbankExtractor(**fbank_conf)
        frontend_check = check_frontend(stock_model, extractor)
        if not frontend_check["equal"]:
            diff = frontend_check["max_abs_diff"]
            msg = f"FbankExtractor differs from the stock frontend (max abs diff {diff})"
            if dumped_feats and (diff is None or diff > 1e-4):
                raise PretrainedError(f"{where}: {msg}; dumped features would not match")
            logging.warning(msg)
    if dumped_feats:
        new_conf.update(frontend=None, frontend_conf={}, input_size=int(fbank_conf["n_mels"]))

    # -- the grown state dict, loaded strictly into the model the new config builds
    for_build = dict(new_conf, token_list=list(new_tokens))
    if stock.stats_file is not None:  # not copied yet
        for_build["normalize_conf"] = dict(new_conf["normalize_conf"], stats_file=str(stock.stats_file))
    grown = ASRSERTask.build_model(argparse.Namespace(**copy.deepcopy(for_build)))
    old_sd = {k: v for k, v in stock_sd.items() if not (dumped_feats and k.startswith("frontend."))}
    # the tokens whose rows are averaged into the new rows: all but the specials
    ordinary = [i for i, t in enumerate(old_tokens) if t not in SPECIAL_TOKENS]
    ordinary = ordinary or list(range(len(old_tokens)))
    new_sd, grown_names = grow_state_dict(old_sd, {k: v.shape for k, v in grown.state_dict().items()},
                                          old_to_new, ordinary, str(stock.model_file))
    with reraise_as_pretrained(RuntimeError, f"the grown state dict of {stock.model_file} "
                                             "does not load strictly: "):
        grown.load_state_dict(new_sd, strict=True)
    grown.eval()
    if [old_to_new[stock_model.sos], old_to_new[stock_model.eos]] != [grown.sos, grown.eos]:
        raise PretrainedError("the extended model's <sos>/<eos> moved to another token")
    del old_sd, stock_sd

    sp = _sp_processor(sp_data, str(stock.bpemodel))
    unknown_pieces = sorted({p for tok in add_tokens for p in sp.EncodeAsPieces(tok)} - set(new_tokens))
    if unknown_pieces:
        logging.warning("pieces next to the new tokens are not in the token list (ESPnet maps "
                        f"them to <unk>): {unknown_pieces}")

    report = None
    if verify:
        n = int(fbank_conf["fs"]) if fbank_conf is not None else 16000
        wave = torch.from_numpy(np.random.default_rng(1).standard_normal(n).astype(np.float32) * 0.1)
        stock_input = grown_input = (wave[None], torch.tensor([n]))
        if dumped_feats:
            feats = torch.from_numpy(extractor(wave.numpy()))[None]
            grown_input = (feats, torch.tensor([feats.size(1)]))
        tokens = [ordinary[(5 * i) % len(ordinary)] for i in range(8)]
        report = compare_models(stock_model, grown, old_to_new, stock_input, grown_input, tokens)
        diffs = [report[k]["max_abs_diff"] for k in ("encoder", "decoder_logits", "ctc_logits")]
        s = report["sos_eos"]
        if not (all(d is not None and d <= atol for d in diffs) and s[0] == s[1] and s[2] == s[3]):
            raise PretrainedError(f"the extended model differs from the stock model: {report}")
        logging.info("the extended model matches the stock model: max abs diff encoder {:.2e}, "
                     "decoder logits {:.2e}, CTC logits {:.2e}".format(*diffs))

    atomic_write_text(output_dir / "tokens.txt", "".join(t + "\n" for t in new_tokens))
    atomic_write_bytes(output_dir / "bpe.model", sp_data)
    if stock.stats_file is not None:
        atomic_copy(stock.stats_file, output_dir / "feats_stats.npz")
    if fbank_conf is not None:
        header = (f"# DefaultFrontend arguments of {stock.config.resolve()}\n"
                  "# in FbankExtractor's format (python -m espnet_ser.bin.extract_feats)\n")
        atomic_write_text(output_dir / "feats_config.yaml",
                          header + yaml.safe_dump(fbank_conf, sort_keys=False))
    atomic_torch_save(new_sd, output_dir / "model.pth")
    atomic_write_text(output_dir / "config.yaml",
                      yaml_no_alias_safe_dump(new_conf, indent=4, sort_keys=False))
    inserted = old_to_new[-1] != len(old_tokens) - 1
    info = {
        "asr_config": str(stock.config.resolve()),
        "asr_config_sha256": sha256sum(stock.config),
        "asr_model_file": str(stock.model_file.resolve()),
        "asr_model_file_sha256": sha256sum(stock.model_file),
        "stock_espnet_version": stock.conf.get("version"),
        "token_list_source": stock.token_source,
        "bpemodel_source": str(stock.bpemodel),
        "stats_file_source": str(stock.stats_file) if stock.stats_file else None,
        "tokens_added": {t: new_tokens.index(t) for t in add_tokens},
        "emotion_tokens": emotion_tokens,
        "old_vocab_size": len(old_tokens),
        "new_vocab_size": len(new_tokens),
        "sos_eos_index": [grown.sos, grown.eos],
        "token_layout": (f"new tokens inserted before {old_tokens[-1]}, which stays last; the other "
                         "old tokens keep their indices") if inserted
        else "new tokens appended after the old tokens",
        "grown_tensors": grown_names,
        "new_rows": "mean of the rows of the old tokens other than " + ", ".join(SPECIAL_TOKENS),
        "pieces_not_in_token_list": unknown_pieces,
        "dumped_feats": bool(dumped_feats),
        "feats_config": str(output_dir / "feats_config.yaml") if fbank_conf else None,
        "feats_config_problem": fbank_problem,
        "frontend_check": frontend_check,
        "config_keys_dropped": dropped,
        "verification": report,
    }
    atomic_write_text(output_dir / "info.json", json.dumps(info, indent=2) + "\n")
    logging.info(f"wrote {output_dir}: {len(old_tokens)} -> {len(new_tokens)} tokens "
                 f"({' '.join(add_tokens)}), grew {', '.join(grown_names)}")
    return info


# Components whose class and ``<name>_conf`` come from the pretrained config (a training
# config may name a subclass, e.g. gst_conformer over conformer, and set its own arguments).
ARCH_COMPONENTS = ("frontend", "normalize", "preencoder", "encoder", "postencoder", "decoder")
FEATURE_COMPONENTS = ("frontend", "normalize")
# Entries of model_conf that belong to the pretrained vocabulary.
VOCAB_MODEL_CONF = ("emotion_tokens", "sym_space", "sym_blank", "sym_sos", "sym_eos")
# Arguments supplied by the task when it builds a component, never by a config.
BUILD_ARGS = ("self", "input_size", "vocab_size", "encoder_output_size", "odim")


def _yaml_value(value):
    """``value`` as plain YAML data (tuples as lists), or raise TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _yaml_value(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def class_arguments(cls) -> Dict[str, object]:
    """Keyword arguments of ``cls.__init__`` a config may set (not :data:`BUILD_ARGS`) ->
    default (or ``Parameter.empty``)."""
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in BUILD_ARGS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def complete_conf(cls, conf: Mapping, where: str) -> Tuple[Dict, List[str]]:
    """``conf`` with the plain-YAML defaults of ``cls`` it omits written out (so a subclass built
    in its place keeps them, e.g. ``rel_pos_type: legacy``), and the filled names."""
    args = class_arguments(cls)
    unknown = sorted(set(conf) - set(args))
    if unknown:
        raise PretrainedError(f"{where}: {', '.join(unknown)} not argument(s) of {cls.__name__}")
    out, filled = {}, []
    for name, default in args.items():
        if name in conf:
            out[name] = copy.deepcopy(conf[name])
        elif default is not inspect.Parameter.empty:
            try:
                out[name] = _yaml_value(default)
            except TypeError:
                continue
            filled.append(name)
    return out, filled


@dataclasses.dataclass
class MergedConfig:
    """``config`` to train with; per field ``taken`` from the pretrained config ``key = value``;
    per value ``replaced`` in the training config ``key: ours -> theirs``."""
    config: Dict
    taken: List[str]
    replaced: List[str]


def merge_pretrained_config(pretrained_dir: PathLike, train_config: PathLike) -> MergedConfig:
    """The config for fine-tuning the model in ``pretrained_dir``: architecture, tokenizer,
    :data:`VOCAB_MODEL_CONF` and ``init_param[0]`` from its config.yaml, the rest from
    ``train_config``; a component class that does not extend the pretrained one is refused."""
    quiet_nltk_downloads()
    from espnet_ser.tasks.asr_ser import ASRSERTask
    from espnet_ser.utils.safe_load import load_yaml_config
    pdir = Path(pretrained_dir)
    p_path, r_path = pdir / "config.yaml", Path(train_config)
    with reraise_as_pretrained():
        pre, ours = load_yaml_config(p_path), load_yaml_config(r_path)
    choices = {c.name: c for c in ASRSERTask.class_choices_list}
    merged, taken, replaced = copy.deepcopy(ours), [], []

    def take(key, value, note=""):
        taken.append(f"{key} = {json.dumps(value, default=str)}{note}")

    def differs(key, our_value, value):
        replaced.append(f"{key}: {json.dumps(our_value, default=str)} in {r_path} -> "
                        f"{json.dumps(value, default=str)}")

    def merge_conf(conf_key, cls, extension, owner):
        """The pretrained ``conf_key`` (defaults of ``cls`` filled), with our ``extension``
        arguments; any other argument of ours must be one of ``cls`` (``owner``)."""
        conf, filled = complete_conf(cls, dict(pre.get(conf_key) or {}), f"{p_path}: {conf_key}")
        if conf_key == "normalize_conf" and pre.get("normalize") == "global_mvn":
            conf["stats_file"] = str(pdir / "feats_stats.npz")
        for key in conf:
            take(f"{conf_key}.{key}", conf[key], f" ({cls.__name__}'s default)" if key in filled else "")
        for key, value in (ours.get(conf_key) or {}).items():
            if key in extension:
                conf[key] = copy.deepcopy(value)
            elif key not in conf:
                raise PretrainedError(f"{r_path}: {conf_key}.{key} is not an argument of {owner}")
            elif value != conf[key] and (conf_key, key) != ("normalize_conf", "stats_file"):
                differs(f"{conf_key}.{key}", value, conf[key])
        return conf

    for name in ARCH_COMPONENTS:
        conf_key = f"{name}_conf"
        p_name, r_name, r_conf = pre.get(name), ours.get(name), dict(ours.get(conf_key) or {})
        p_cls = None
        if p_name is not None:
            with reraise_as_pretrained(ValueError, f"{p_path}: {name}: "):
                p_cls = choices[name].get_class(p_name)
        build_name, extension = p_name, {}
        if r_name is not None and r_name != p_name:
            with reraise_as_pretrained(ValueError, f"{r_path}: {name}: "):
                r_cls = choices[name].get_class(r_name)
            if p_cls is not None and issubclass(r_cls, p_cls):
                build_name = r_name  # e.g. gst_conformer over conformer: style arguments added
                extension = {k: v for k, v in class_arguments(r_cls).items()
                             if k not in class_arguments(p_cls)}
            elif name in FEATURE_COMPONENTS:
                differs(name, r_name, p_name)
            else:
                raise PretrainedError(f"{r_path}: {name}: {r_name} cannot start from the pretrained "
                                      f"model's {name}: {p_name} ({p_path}); name {p_name} or a "
                                      "class extending it")
        merged[name] = build_name
        take(name, p_name, "" if build_name == p_name else f" (built as {build_name}, which extends it)")
        if p_cls is None:
            merged[conf_key] = {}
            if r_conf:
                differs(conf_key, r_conf, {})
            continue
        merged[conf_key] = merge_conf(conf_key, p_cls, extension,
                                      f"{build_name} (the pretrained model's {name} is {p_name})")

    from espnet2.asr.ctc import CTC
    merged["ctc_conf"] = merge_conf("ctc_conf", CTC, {}, "ESPnet's CTC")

    files = {"token_list": pdir / "tokens.txt", "bpemodel": pdir / "bpe.model"}
    for key in ("input_size", "token_type", "token_list", "bpemodel"):
        value = str(files[key]) if key in files else pre.get(key)
        if ours.get(key) is not None and ours[key] != value:
            differs(key, ours[key], value)
        merged[key] = value
        take(key, value)

    model_conf = dict(ours.get("model_conf") or {})
    for key in VOCAB_MODEL_CONF:
        if key in (pre.get("model_conf") or {}):
            value = pre["model_conf"][key]
            if key in model_conf and model_conf[key] != value:
                differs(f"model_conf.{key}", model_conf[key], value)
            model_conf[key] = copy.deepcopy(value)
            take(f"model_conf.{key}", value)
    merged["model_conf"] = model_conf

    ours_init = ours.get("init_param") or []
    init = merged["init_param"] = [str(pdir / "model.pth")]
    init += [p for p in ([ours_init] if isinstance(ours_init, str) else ours_init) if p not in init]
    take("init_param[0]", init[0])
    return MergedConfig(merged, taken, replaced)


def write_pretrained_train_config(pretrained_dir: PathLike, train_config: PathLike,
                                  output: Optional[PathLike]) -> MergedConfig:
    """Log what :func:`merge_pretrained_config` takes (replacements as warnings) and write
    its config, headed by the same lines as comments, to ``output`` (unless None)."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump
    result = merge_pretrained_config(pretrained_dir, train_config)
    p_path = Path(pretrained_dir) / "config.yaml"
    for line in result.taken:
        logging.info(f"from {p_path}: {line}")
    for line in result.replaced:
        logging.warning(f"replaced by the pretrained model's value: {line}")
    if output is None:
        return result
    header = [f"# {train_config} with the architecture of the pretrained model {p_path}",
              "# (python -m espnet_ser.bin.pretrained_train_config). Fields taken from it:"]
    header += [f"#   {line}" for line in result.taken]
    if result.replaced:
        header.append("# Values of the training config replaced by the pretrained model's:")
        header += [f"#   {line}" for line in result.replaced]
    text = "\n".join(header) + "\n" + yaml_no_alias_safe_dump(result.config, indent=4, sort_keys=False)
    atomic_write_text(Path(output), text)
    logging.info(f"wrote {output}: {len(result.taken)} field(s) from the pretrained config, "
                 f"{len(result.replaced)} value(s) of {train_config} replaced")
    return result
