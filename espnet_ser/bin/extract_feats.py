#!/usr/bin/env python3
"""Dump the features of a Kaldi data directory (stage 3): ``--job J`` extracts one part of
``--nj``, ``--merge`` merges them, neither does both; finished work is kept unless --overwrite."""

import argparse
import logging
import sys
from typing import Optional, Sequence

import torch

from espnet_ser.data.datadir import DataDirError
from espnet_ser.features.dump import extract_part, merge_dump, subset_dump
from espnet_ser.features.extractor import FeatureError
from espnet_ser.features.fbank import FRONTEND_KEYS, FbankExtractor
from espnet_ser.features.ssl_states import make_extractor
from espnet_ser.utils.cli import LOG_LEVELS, doc_parser, setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    parser = doc_parser("Dump log-mel filterbanks (ESPnet DefaultFrontend) of a data directory",
                        show_defaults=True)
    add = parser.add_argument
    flag = dict(type=str2bool, nargs="?", const=True, default=False)
    add("--extractor", choices=["fbank", "wave", "ssl_states"], default="fbank",
        help="fbank: log-mel filterbanks (--config); wave: the waveform itself (--fs, default "
        "16000); ssl_states: hidden states of the frozen SSL encoder of --train_config")
    add("--config", help="filterbank YAML (conf/fbank.yaml); needed for --extractor fbank "
        "unless --merge")
    add("--train_config", help="training YAML whose encoder_conf (encoder: ssl, "
        "freeze: all) gives the model and layers to dump (--extractor ssl_states)")
    add("--device", default="cpu", help="torch device (--extractor ssl_states)")
    add("--data_dir", required=True, help="Kaldi data directory with wav.scp")
    add("--out_dir", required=True, help="dump directory, e.g. dump/fbank/train")
    add("--nj", type=int, default=1, help="number of parts")
    add("--job", type=int, help="part to extract (1..nj); all if not given")
    add("--merge", **flag, help="merge the nj parts into out_dir/feats.scp instead of extracting")
    add("--subset_of", help="finished dump of a superset to take the features from")
    add("--overwrite", **flag, help="recompute finished parts / rewrite a finished merge")
    add("--channel", type=int, help="0-based channel to use from multi-channel audio "
        "(multi-channel is an error otherwise)")
    add("--allow_commands", type=str2bool, default=False,
        help="run wav.scp values that are shell commands ('cmd |'); refused otherwise")
    add("--resample", type=str2bool, default=False,
        help="resample audio whose rate differs from the config's fs (an error otherwise)")
    add("--on_error", choices=["fail", "reject"], default="fail", help="faulty audio: stop "
        "(fail) or leave the utterance out and list it in out_dir/reject_list (reject)")
    add("--compress", type=str2bool, default=False, help="--extractor ssl_states: Kaldi "
        "compressed matrices (copy-feats --compress true: 1/4 of the size, lossy)")
    add("--num_threads", type=int, default=1, help="torch threads per job")
    add("--log_level", default="INFO", choices=LOG_LEVELS)
    group = parser.add_argument_group("frontend overrides (default: the --config value)")
    for key in FRONTEND_KEYS:
        kind = str2bool if key in ("center", "normalized", "onesided", "htk") else int
        group.add_argument(f"--{key}", type=str if key == "window" else kind)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    extracting = not args.merge and not args.subset_of
    given = ["--config"] * (args.config is not None) + [
        "--" + k for k in FRONTEND_KEYS if k != "fs" and getattr(args, k) is not None]
    for failed, message in (
            (args.nj < 1, f"--nj must be >= 1, got {args.nj}"),
            (args.job is not None and not 1 <= args.job <= args.nj,
             f"--job must be in 1..{args.nj}, got {args.job}"),
            (args.merge and args.job is not None, "--merge and --job exclude each other"),
            (extracting and args.extractor == "fbank" and args.config is None,
             "--config is required to extract features"),
            (extracting and args.extractor == "ssl_states" and args.train_config is None,
             "--extractor ssl_states needs --train_config"),
            (args.extractor != "fbank" and given, f"--extractor {args.extractor} takes no "
             f"filterbank config or frontend overrides (got {' '.join(given)})"),
            (args.compress and args.extractor != "ssl_states",
             f"--compress true is for --extractor ssl_states, not {args.extractor}"),
            (args.channel is not None and args.channel < 0,
             f"--channel must be >= 0, got {args.channel}")):
        if failed:
            parser.error(message)
    torch.set_num_threads(max(1, args.num_threads))

    audio = dict(on_error=args.on_error, allow_commands=args.allow_commands)
    try:
        if args.subset_of:
            subset_dump(args.data_dir, args.subset_of, args.out_dir, **audio)
            return
        if not args.merge:
            if args.extractor == "fbank":
                extractor = FbankExtractor.from_yaml(
                    args.config, **{k: getattr(args, k) for k in FRONTEND_KEYS})
                logging.info(f"frontend: {extractor.frontend}")
            else:
                extractor = make_extractor(args.extractor, fs=args.fs, device=args.device,
                                           train_config=args.train_config, compress=args.compress)
                logging.info(f"extractor {args.extractor}: {extractor.conf}")
            for job in [args.job] if args.job is not None else range(1, args.nj + 1):
                extract_part(args.data_dir, args.out_dir, extractor, args.nj, job,
                             channel=args.channel, overwrite=args.overwrite,
                             resample_to_fs=args.resample, **audio)
        if args.job is None:
            merge_dump(args.data_dir, args.out_dir, args.nj, overwrite=args.overwrite, **audio)
    except (FeatureError, DataDirError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
