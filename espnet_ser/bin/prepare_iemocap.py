"""Write the IEMOCAP Kaldi data directories of espnet_ser.data.iemocap (iemocap_all,
session folds, speaker folds); exits 1 with ``ERROR: <file>:<line>: ...`` on a bad tree."""

import argparse

from espnet_ser.data.iemocap import (DEFAULT_EMOTIONS, DEFAULT_LOSO_SEED,
                                     DEFAULT_LOSO_VALID_FRACTION, LOSO_VALID_MODES, PROTOCOLS,
                                     prepare_iemocap)
from espnet_ser.data.prepare import corpus_parser, run_prepare
from espnet_ser.utils.cli import str2bool


def _modes(value: str):
    modes = value.replace(",", " ").split()
    bad = [m for m in modes if m not in LOSO_VALID_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"{value!r}: choose from {','.join(LOSO_VALID_MODES)} (comma-separated)")
    return modes


def get_parser() -> argparse.ArgumentParser:
    p = corpus_parser(
        "Prepare IEMOCAP Kaldi data directories (5 session folds, 10 speaker folds)",
        "iemocap_root", "the IEMOCAP_full_release directory (holds Session1..Session5)",
        "where iemocap_all, fold*_* and loso*_* go",
        "read every wav header and require 16 kHz mono")
    p.add_argument("--emotions", default=" ".join(DEFAULT_EMOTIONS),
                   help="space-separated consensus labels to keep")
    p.add_argument("--merge_exc_into_hap", type=str2bool, default=True,
                   help="relabel exc (excited) as hap")
    p.add_argument("--protocols", default=",".join(PROTOCOLS),
                   help="comma-separated folds to write besides iemocap_all: session "
                        "(fold{1..5}_*), loso (the ten speaker folds of each --loso_valid "
                        "protocol)")
    p.add_argument("--loso_valid", type=_modes, default=",".join(LOSO_VALID_MODES),
                   help="comma-separated LOSO validation protocols to write: none = no "
                        "validation set, train on the nine other speakers (losonv{k}_*); "
                        "partner = the test speaker's session partner, 8 training speakers "
                        "(loso{k}_*); random = seeded emotion-stratified "
                        "--loso_valid_fraction of the other nine speakers' utterances "
                        "(losorv{k}_*)")
    p.add_argument("--loso_valid_fraction", type=float, default=DEFAULT_LOSO_VALID_FRACTION,
                   help="share of each emotion held out for valid with --loso_valid random")
    p.add_argument("--loso_seed", type=int, default=DEFAULT_LOSO_SEED,
                   help="seed of --loso_valid random")
    return p


def main(cmd=None) -> None:
    run_prepare(get_parser(), cmd, lambda a: prepare_iemocap(
        a.iemocap_root, a.out_dir, emotions=a.emotions.split(), merge_exc=a.merge_exc_into_hap,
        check_audio=a.check_audio, protocols=a.protocols.replace(",", " ").split(),
        loso_valid=a.loso_valid, loso_valid_fraction=a.loso_valid_fraction,
        loso_seed=a.loso_seed))


if __name__ == "__main__":
    main()
