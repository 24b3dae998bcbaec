"""Write IEMOCAP Kaldi data directories: all utterances, five leave-one-session-out folds
and ten leave-one-speaker-out folds.

    python -m espnet_ser.bin.prepare_iemocap --iemocap_root /corpora/IEMOCAP_full_release \\
        --out_dir data [--emotions "ang hap neu sad"] [--merge_exc_into_hap true] \\
        [--protocols session,loso] [--loso_valid partner,random,none] \\
        [--loso_valid_fraction 0.1] [--loso_seed 0]

writes ``data/iemocap_all``, ``data/fold{1..5}_{train,valid,test}`` (protocol
``session``: test = Session k, valid = Session k mod 5 + 1, train = the other three) and
the ten leave-one-speaker-out folds (protocol ``loso``: test = speaker k of Ses01F
Ses01M ... Ses05F Ses05M) of each ``--loso_valid`` mode: ``data/losonv{k}_{train,test}``
(``none``: train = the nine other speakers, no validation set),
``data/loso{k}_{train,valid,test}`` (``partner``: valid = the session partner of the test
speaker, train = the other 8 speakers) and ``data/losorv{k}_{train,valid,test}``
(``random``: valid = a seeded emotion-stratified 10 % of the other nine speakers'
utterances, train = the rest). Each set has wav.scp (absolute paths), text, utt2spk,
spk2utt, utt2emo and utt2dim (arousal valence dominance); ``iemocap_all`` and the LOSO
sets keep the utterances with no words in the transcript (empty ``text`` line, listed in
``utt2empty_text``). The log gives the utterances each protocol keeps and warns when the
4-class total differs from the full release's 5,531.
Exits 1 with ``ERROR: <file>:<line>: ...`` on a bad corpus tree.
"""

import argparse
import logging
import sys
import time

from espnet_ser.data.datadir import DataDirError
from espnet_ser.data.iemocap import (
    DEFAULT_EMOTIONS,
    DEFAULT_LOSO_SEED,
    DEFAULT_LOSO_VALID_FRACTION,
    LOSO_VALID_MODES,
    PROTOCOLS,
    prepare_iemocap,
)
from espnet_ser.utils.cli import setup_logging, str2bool


def _modes(value: str):
    modes = value.replace(",", " ").split()
    bad = [m for m in modes if m not in LOSO_VALID_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"{value!r}: choose from {','.join(LOSO_VALID_MODES)} (comma-separated)")
    return modes


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Prepare IEMOCAP Kaldi data directories (5 session folds, 10 speaker folds)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--iemocap_root", required=True,
                   help="the IEMOCAP_full_release directory (holds Session1..Session5)")
    p.add_argument("--out_dir", required=True, help="where iemocap_all, fold*_* and loso*_* go")
    p.add_argument("--emotions", default=" ".join(DEFAULT_EMOTIONS),
                   help="space-separated consensus labels to keep")
    p.add_argument("--merge_exc_into_hap", type=str2bool, default=True,
                   help="relabel exc (excited) as hap")
    p.add_argument("--check_audio", type=str2bool, default=False,
                   help="read every wav header and require 16 kHz mono")
    p.add_argument("--protocols", default=",".join(PROTOCOLS),
                   help="comma-separated folds to write besides iemocap_all: session "
                        "(fold{1..5}_*), loso (the ten speaker folds of each --loso_valid protocol)")
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
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    start = time.time()
    try:
        counts = prepare_iemocap(args.iemocap_root, args.out_dir,
                                 emotions=args.emotions.split(),
                                 merge_exc=args.merge_exc_into_hap,
                                 check_audio=args.check_audio,
                                 protocols=[p for p in args.protocols.replace(",", " ").split()],
                                 loso_valid=args.loso_valid,
                                 loso_valid_fraction=args.loso_valid_fraction,
                                 loso_seed=args.loso_seed)
    except DataDirError as e:
        sys.exit(f"ERROR: {e}")
    logging.info("%d utterances in %d sets, done in %.1f s", counts["num_utts"],
                 len(counts["sets"]), time.time() - start)


if __name__ == "__main__":
    main()
