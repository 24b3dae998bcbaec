#!/usr/bin/env python3
"""Dump log-mel filterbank features of a Kaldi data directory (stage 3).

One job of ``nj`` (run them in parallel, e.g. with run.pl JOB=1:4)::

    python -m espnet_ser.bin.extract_feats --config conf/fbank.yaml \\
        --data_dir data/train --out_dir dump/fbank/train --nj 4 --job 2

then merge them::

    python -m espnet_ser.bin.extract_feats --merge \\
        --data_dir data/train --out_dir dump/fbank/train --nj 4

Without ``--job`` (and without ``--merge``) every part is extracted in this process and
then merged. Utterances of wav.scp are split in sorted order into ``nj`` contiguous
parts; job J writes ``out_dir/split{nj}/feats.J.{ark,scp}`` (float32, frames x n_mels,
absolute ark paths) and ``feats_shape.J``. The merge writes ``out_dir/feats.scp``,
``out_dir/feats_shape`` (``<utt> <frames>,<n_mels>``, ESPnet's shape-file format) and
copies the data directory files. Finished parts and a finished merge are kept when the
command is run again (``--overwrite true`` recomputes).

A set that is a subset of an already dumped set (cross-validation folds) takes its
features from that dump instead of extracting them again::

    python -m espnet_ser.bin.extract_feats --subset_of dump/fbank/all \\
        --data_dir data/fold1_test --out_dir dump/fbank/fold1_test

Any frontend argument of the config can be overridden on the command line, e.g.
``--n_mels 40``.

Dumps for self-supervised encoders (``encoder: ssl``; see
:mod:`espnet_ser.features.ssl_states`)::

    # waveforms (1-D float32, resampled to 16 kHz), shape lines <utt> <samples>
    python -m espnet_ser.bin.extract_feats --extractor wave --fs 16000 --resample true \
        --data_dir data/train --out_dir dump/raw/train --nj 4
    # hidden states of a frozen encoder (encoder_conf.freeze: all), the layers the
    # training config needs, float32 (frames, n_layers * hidden)
    python -m espnet_ser.bin.extract_feats --extractor ssl_states \
        --train_config conf/train_ser_ssl_frozen.yaml --resample true \
        --data_dir data/train --out_dir dump/ssl_states/train --nj 4

Audio policy (see :mod:`espnet_ser.features.fbank`): wav.scp commands (``cmd |``) are
refused unless ``--allow_commands true``; a sample rate other than the config's ``fs``
is an error unless ``--resample true``; multi-channel audio is an error unless
``--channel`` picks one; faulty audio (missing, unreadable, truncated, empty, too
short) stops the job unless ``--on_error reject`` (give it to the jobs and to the
merge), which leaves those utterances out and lists them in ``out_dir/reject_list``.
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

import torch

from espnet_ser.data.datadir import DataDirError
from espnet_ser.features.fbank import (
    FRONTEND_KEYS,
    FbankExtractor,
    FeatureError,
    extract_part,
    subset_dump,
    load_fbank_config,
    merge_parts,
)
from espnet_ser.features.ssl_states import make_extractor
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Dump log-mel filterbanks (ESPnet DefaultFrontend) of a data directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--extractor", choices=["fbank", "wave", "ssl_states"], default="fbank",
        help="fbank: log-mel filterbanks (--config); wave: the waveform itself (--fs, "
        "default 16000); ssl_states: hidden states of the frozen SSL encoder of "
        "--train_config",
    )
    parser.add_argument("--config", help="filterbank YAML (conf/fbank.yaml); needed for "
                        "--extractor fbank unless --merge")
    parser.add_argument("--train_config", default=None,
                        help="training YAML whose encoder_conf (encoder: ssl, freeze: all) "
                        "gives the model and layers to dump (--extractor ssl_states)")
    parser.add_argument("--device", default="cpu", help="torch device (--extractor ssl_states)")
    parser.add_argument("--data_dir", required=True, help="Kaldi data directory with wav.scp")
    parser.add_argument("--out_dir", required=True, help="dump directory, e.g. dump/fbank/train")
    parser.add_argument("--nj", type=int, default=1, help="number of parts")
    parser.add_argument("--job", type=int, default=None, help="part to extract (1..nj); all if not given")
    parser.add_argument(
        "--merge", type=str2bool, nargs="?", const=True, default=False,
        help="merge the nj parts into out_dir/feats.scp instead of extracting",
    )
    parser.add_argument("--subset_of", default=None,
                        help="finished dump of a superset to take the features from")
    parser.add_argument(
        "--overwrite", type=str2bool, nargs="?", const=True, default=False,
        help="recompute finished parts / rewrite a finished merge",
    )
    parser.add_argument(
        "--channel", type=int, default=None,
        help="0-based channel to use from multi-channel audio (multi-channel is an error otherwise)",
    )
    parser.add_argument(
        "--allow_commands", type=str2bool, default=False,
        help="run wav.scp values that are shell commands ('cmd |'); refused otherwise",
    )
    parser.add_argument(
        "--resample", type=str2bool, default=False,
        help="resample audio whose rate differs from the config's fs (an error otherwise)",
    )
    parser.add_argument(
        "--on_error", choices=["fail", "reject"], default="fail",
        help="faulty audio: stop (fail) or leave the utterance out and list it in "
        "out_dir/reject_list (reject)",
    )
    parser.add_argument(
        "--compress", type=str2bool, default=False,
        help="--extractor ssl_states: write Kaldi compressed matrices (as copy-feats "
        "--compress true: 8 bits a value, about 1/4 of the size, lossy)",
    )
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    group = parser.add_argument_group("frontend overrides (default: the --config value)")
    group.add_argument("--fs", type=int)
    group.add_argument("--n_fft", type=int)
    group.add_argument("--win_length", type=int)
    group.add_argument("--hop_length", type=int)
    group.add_argument("--window", type=str)
    group.add_argument("--center", type=str2bool)
    group.add_argument("--normalized", type=str2bool)
    group.add_argument("--onesided", type=str2bool)
    group.add_argument("--n_mels", type=int)
    group.add_argument("--fmin", type=int)
    group.add_argument("--fmax", type=int)
    group.add_argument("--htk", type=str2bool)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    if args.job is not None and not 1 <= args.job <= args.nj:
        parser.error(f"--job must be in 1..{args.nj}, got {args.job}")
    if args.merge and args.job is not None:
        parser.error("--merge and --job exclude each other")
    extracting = not args.merge and not args.subset_of
    if extracting and args.extractor == "fbank" and args.config is None:
        parser.error("--config is required to extract features")
    if extracting and args.extractor == "ssl_states" and args.train_config is None:
        parser.error("--extractor ssl_states needs --train_config")
    if args.extractor != "fbank":
        given = ["--" + k for k in FRONTEND_KEYS if k != "fs" and getattr(args, k) is not None]
        if args.config is not None:
            given.insert(0, "--config")
        if given:
            parser.error(f"--extractor {args.extractor} takes no filterbank config or "
                         f"frontend overrides (got {' '.join(given)})")
    if args.compress and args.extractor != "ssl_states":
        parser.error(f"--compress true is for --extractor ssl_states, not {args.extractor}")
    if args.channel is not None and args.channel < 0:
        parser.error(f"--channel must be >= 0, got {args.channel}")
    torch.set_num_threads(max(1, args.num_threads))

    try:
        if args.subset_of:
            subset_dump(args.data_dir, args.subset_of, args.out_dir, on_error=args.on_error,
                        allow_commands=args.allow_commands)
            return
        if args.merge:
            merge_parts(args.data_dir, args.out_dir, args.nj, overwrite=args.overwrite,
                        on_error=args.on_error, allow_commands=args.allow_commands)
            return
        if args.extractor == "fbank":
            conf = load_fbank_config(args.config)
            conf.update({k: getattr(args, k) for k in FRONTEND_KEYS if getattr(args, k) is not None})
            extractor = FbankExtractor(**conf)
            logging.info(f"frontend: {extractor.frontend}")
        else:
            extractor = make_extractor(args.extractor, fs=args.fs,
                                       train_config=args.train_config, device=args.device,
                                       compress=args.compress)
            logging.info(f"extractor {args.extractor}: {extractor.conf}")
        jobs = [args.job] if args.job is not None else list(range(1, args.nj + 1))
        for job in jobs:
            extract_part(
                args.data_dir, args.out_dir, extractor, args.nj, job,
                channel=args.channel, overwrite=args.overwrite,
                allow_commands=args.allow_commands, resample_to_fs=args.resample,
                on_error=args.on_error,
            )
        if args.job is None:
            merge_parts(args.data_dir, args.out_dir, args.nj, overwrite=args.overwrite,
                        on_error=args.on_error, allow_commands=args.allow_commands)
    except (FeatureError, DataDirError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
