#!/usr/bin/env python3
"""Convert the GST module of a GST-Tacotron checkpoint into a GSTEncoder state dict.

``python -m espnet_ser.bin.convert_gst_tacotron tacotron_gst.pth exp/gst/gst.pth`` writes
gst.pth (strict GSTEncoder state dict) and gst.yaml (its ``style_encoder_conf``). Input keys
``<prefix>encoder.*`` / ``<prefix>stl.*`` of the public PyTorch GST-Tacotron; sizes come from
the shapes except ``--n_heads`` and ``--n_mels``. Read with ``torch.load(weights_only=True)``.
"""

import argparse
import logging
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import yaml

from espnet_ser.asr.gst import GSTEncoder
from espnet_ser.utils.cli import doc_parser, setup_logging
from espnet_ser.utils.io import atomic_torch_save, atomic_write_text

STL_KEYS = {
    "stl.embed": "style_tokens.embed",
    "stl.attention.W_query.weight": "style_tokens.query_proj.weight",
    "stl.attention.W_key.weight": "style_tokens.key_proj.weight",
    "stl.attention.W_value.weight": "style_tokens.value_proj.weight",
}
GRU_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
CONV_KEYS = ("weight", "bias")
BN_KEYS = ("weight", "bias", "running_mean", "running_var")
GST_NAMESPACES = ("encoder.convs.", "encoder.bns.", "encoder.gru.", "stl.")
N_LISTED_KEYS = 20


class ConversionError(ValueError):
    """The input is not a GST-Tacotron checkpoint this converter understands."""


def load_checkpoint(path) -> Any:
    """``torch.load`` on CPU with ``weights_only=True``; refuse other pickled objects."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(
            f"{path}: cannot be loaded with torch.load(weights_only=True) ({type(e).__name__}: {e}). "
            "The file holds pickled objects other than tensors and plain containers; they are not "
            "unpickled because that can run arbitrary code. Re-save only the model's state dict "
            "(torch.save(model.state_dict(), ...)) from a source you trust.") from e


def flatten_tensors(obj: Any, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    """All tensors of nested mappings, with their keys joined by ``.``."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1] if prefix else ""] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            out.update(flatten_tensors(value, f"{prefix}{key}."))
    return out


def unwrap_state_dict(obj: Any) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a checkpoint: a state dict, possibly inside ``model`` / ``state_dict``."""
    if not isinstance(obj, Mapping):
        raise ConversionError(f"expected a state dict (a mapping), found {type(obj).__name__}")
    return flatten_tensors(obj)


def _listing(keys: List[str], limit: int = N_LISTED_KEYS, where: str = "") -> str:
    if not keys:
        return f"no tensor keys found{where}"
    shown = "\n  ".join(keys[:limit])
    more = f"\n  ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return f"{len(keys)} tensor keys found{where}:\n  {shown}{more}"


def find_prefixes(keys) -> List[str]:
    """Prefixes under which ``stl.*`` GST keys occur (``""`` for a bare GST module)."""
    return sorted({key[: len(key) - len(suffix)] for key in keys for suffix in STL_KEYS
                   if key == suffix or key.endswith("." + suffix)})


def select_prefix(keys) -> str:
    """The one prefix of a GST module among ``keys``; fail if there are none or several."""
    keys = list(keys)
    prefixes = find_prefixes(keys)
    if not prefixes:
        raise ConversionError("no GST-Tacotron style token layer found (no key ending in "
                              f"{' / '.join(STL_KEYS)}); {_listing(keys)}")
    if len(prefixes) > 1:
        raise ConversionError(f"several GST modules found, under the prefixes {prefixes}; "
                              f"choose one with --prefix; {_listing(keys)}")
    return prefixes[0]


def _conv_count(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"encoder\.convs\.(\d+)\.weight$")
    indices = sorted(int(m.group(1)) for m in map(pattern.match, sd) if m)
    if indices != list(range(len(indices))):
        raise ConversionError(f"convolution indices must be 0..K-1, found encoder.convs.{indices}.weight")
    return len(indices)


def _required_keys(n_convs: int) -> List[str]:
    keys = []
    for i in range(n_convs):
        keys += [f"encoder.convs.{i}.{k}" for k in CONV_KEYS] + [f"encoder.bns.{i}.{k}" for k in BN_KEYS]
    return keys + [f"encoder.gru.{k}" for k in GRU_KEYS] + list(STL_KEYS)


def n_mels_range(n_convs: int, out_freq: int) -> Tuple[int, int]:
    """The n_mels values (inclusive range) ``n_convs`` stride-2 convs map to ``out_freq``."""
    scale = 2**n_convs
    return scale * (out_freq - 1) + 1, scale * out_freq


def convert_state_dict(sd: Mapping[str, torch.Tensor], n_heads: int = 8, n_mels: int = 80,
                       prefix: Optional[str] = None
                       ) -> Tuple["OrderedDict[str, torch.Tensor]", Dict[str, Any]]:
    """(GSTEncoder state dict, its keyword arguments) from the GST keys under ``prefix`` (found
    if None) of a flat GST-Tacotron state dict, or ConversionError naming what was found."""
    keys = list(sd)
    if prefix is None:
        prefix = select_prefix(keys)
    n_convs = _conv_count(sd, prefix)
    missing = [k for k in _required_keys(max(n_convs, 1)) if prefix + k not in sd]
    if missing:
        found = [k for k in keys if k.startswith(prefix)]
        raise ConversionError(f"GST keys missing under the prefix {prefix!r}: {missing}; "
                              f"{_listing(found, limit=4 * N_LISTED_KEYS, where=f' under {prefix!r}')}")
    known = set(prefix + k for k in _required_keys(n_convs))
    known |= {f"{prefix}encoder.bns.{i}.num_batches_tracked" for i in range(n_convs)}
    unknown = [k for k in keys
               if k not in known and any(k.startswith(prefix + ns) for ns in GST_NAMESPACES)]
    if unknown:
        raise ConversionError(f"unexpected keys in the GST module under the prefix {prefix!r} "
                              f"(a different architecture?): {unknown[:N_LISTED_KEYS]}")

    def get(name: str) -> torch.Tensor:
        return sd[prefix + name]

    def shape(name: str, expected: Tuple[Optional[int], ...], shown: str = "") -> Tuple[int, ...]:
        """The shape of ``name`` if it is ``expected`` (None: any size), else ConversionError."""
        found = tuple(int(n) for n in get(name).shape)
        if len(found) != len(expected) or any(e not in (None, n) for e, n in zip(expected, found)):
            raise ConversionError(f"{name}: shape {found}, expected {shown or tuple(expected)}")
        return found

    channels: List[int] = []
    for i in range(n_convs):
        c_in = channels[-1] if channels else 1
        channels.append(shape(f"encoder.convs.{i}.weight", (None, c_in, 3, 3), f"(C, {c_in}, 3, 3)")[0])
        for name in [f"encoder.convs.{i}.bias"] + [f"encoder.bns.{i}.{k}" for k in BN_KEYS]:
            shape(name, (channels[-1],))

    ref_dim = shape("encoder.gru.weight_hh_l0", (None, None), "(3 * H, H)")[1]
    shape("encoder.gru.weight_hh_l0", (3 * ref_dim, ref_dim), "(3 * H, H)")
    w_ih = get("encoder.gru.weight_ih_l0")
    if w_ih.dim() != 2 or w_ih.shape[0] != 3 * ref_dim or w_ih.shape[1] % channels[-1]:
        raise ConversionError(f"encoder.gru.weight_ih_l0: shape {tuple(w_ih.shape)}, expected "
                              f"({3 * ref_dim}, {channels[-1]} * F)")
    for k in ("bias_ih_l0", "bias_hh_l0"):
        shape(f"encoder.gru.{k}", (3 * ref_dim,))
    out_freq = int(w_ih.shape[1]) // channels[-1]
    low, high = n_mels_range(n_convs, out_freq)
    if not low <= n_mels <= high:
        raise ConversionError(f"n_mels={n_mels} does not fit the checkpoint: its GRU input "
                              f"{int(w_ih.shape[1])} = {channels[-1]} channels x {out_freq} frequency "
                              f"bins after {n_convs} stride-2 convolutions means n_mels in "
                              f"{low}..{high}; give --n_mels")

    n_tokens, token_dim = shape("stl.embed", (None, None), "(n_tokens, D)")
    style_dim = shape("stl.attention.W_query.weight", (None, ref_dim), f"(style_dim, {ref_dim})")[0]
    for k in ("W_key", "W_value"):
        shape(f"stl.attention.{k}.weight", (style_dim, token_dim))
    if n_heads < 1 or style_dim % n_heads:
        raise ConversionError(f"n_heads={n_heads} does not divide the style dimension {style_dim}; "
                              "give --n_heads")
    if style_dim // n_heads != token_dim:
        logging.warning(
            "token dimension %d != style_dim / n_heads = %d / %d: GST-Tacotron ties them "
            "(token_dim = style_dim // n_heads), which suggests n_heads=%s; check --n_heads",
            token_dim, style_dim, n_heads, style_dim // token_dim if style_dim % token_dim == 0 else "?")

    conf: Dict[str, Any] = dict(n_mels=n_mels, conv_channels=channels, ref_dim=ref_dim,
                                n_tokens=n_tokens, n_heads=n_heads, style_dim=style_dim,
                                token_dim=token_dim)

    new_sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k in _required_keys(n_convs):  # encoder.* -> reference_encoder.*, stl.* -> style_tokens.*
        new_sd[STL_KEYS.get(k, "reference_" + k)] = get(k)
        if k.endswith(".running_var"):
            tracked = k.replace("running_var", "num_batches_tracked")
            new_sd["reference_" + tracked] = sd.get(prefix + tracked, torch.tensor(0)).reshape(())
    new_sd = OrderedDict((k, v.detach().clone().contiguous()) for k, v in new_sd.items())

    try:  # the result must load strictly into the module the configuration describes
        GSTEncoder(**conf).load_state_dict(new_sd, strict=True)
    except (RuntimeError, ValueError) as e:
        raise ConversionError(f"converted parameters do not fit GSTEncoder({conf}): {e}") from e
    return new_sd, conf


def conf_path(out) -> Path:
    return Path(out).with_suffix(".yaml")


def convert_file(in_path, out_path, n_heads: int = 8, n_mels: int = 80,
                 prefix: Optional[str] = None) -> Dict[str, Any]:
    """Convert ``in_path`` and write ``out_path`` and its ``.yaml``; return the arguments."""
    in_path, out_path = Path(in_path), Path(out_path)
    yaml_path = conf_path(out_path)
    if out_path.suffix == ".yaml":
        raise ConversionError(f"{out_path}: OUT must not end in .yaml (the arguments go there)")
    for path in (out_path, yaml_path):
        if in_path.exists() and path.exists() and path.samefile(in_path):
            raise ConversionError(f"{path}: would overwrite the input {in_path}")
    obj = load_checkpoint(in_path)
    try:
        sd = unwrap_state_dict(obj)
        if prefix is None:
            prefix = select_prefix(sd)
        new_sd, conf = convert_state_dict(sd, n_heads=n_heads, n_mels=n_mels, prefix=prefix)
    except ConversionError as e:
        raise ConversionError(f"{in_path}: {e}") from e
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    n_params = sum(v.numel() for k, v in new_sd.items() if not k.endswith(buffers))
    header = (f"# GSTEncoder arguments (style_encoder_conf) for {out_path.name},\n"
              f"# converted from {in_path.name} (GST prefix {prefix!r}, {n_params} parameters)\n")
    atomic_torch_save(new_sd, out_path)
    atomic_write_text(yaml_path, header + yaml.safe_dump(conf, sort_keys=False, default_flow_style=None))
    return conf


def get_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__, show_defaults=True)
    parser.add_argument("input", type=str, help="GST-Tacotron checkpoint (read only)")
    parser.add_argument("output", type=str, help="GSTEncoder state dict to write, e.g. gst.pth")
    parser.add_argument("--n_heads", type=int, default=8,
                        help="Attention heads of the style token layer (not visible in the shapes)")
    parser.add_argument("--n_mels", type=int, default=80,
                        help="Log-mel bins of the reference encoder input (shapes give a range)")
    parser.add_argument("--prefix", type=str, default=None, help="Key prefix of the GST module, "
                        "e.g. 'gst.' (default: found from the stl.* keys)")
    parser.add_argument("--log_level", type=str, default="INFO", help="Logging level")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    try:
        conf = convert_file(args.input, args.output, n_heads=args.n_heads, n_mels=args.n_mels,
                            prefix=args.prefix)
    except (ConversionError, OSError) as e:
        logging.error(str(e))
        sys.exit(1)
    logging.info("wrote %s and %s: GSTEncoder(%s)", args.output, conf_path(args.output), conf)


if __name__ == "__main__":
    main()
