"""Write RAVDESS speech Kaldi data directories: all files, a random and an actor split.

    python -m espnet_ser.bin.prepare_ravdess \\
        --ravdess_root /corpora/Audio_Speech_Actors_01-24 --out_dir data \\
        [--seed 101] [--test_fraction 0.2]

writes ``data/ravdess_all``, ``data/random_{train,test}`` (scikit-learn's split stratified by emotion,
seeded) and ``data/actor_{train,valid,test}`` (actors 1-18, 19-20, 21-24), each with
wav.scp (absolute paths of the original 48 kHz files; resample to 16 kHz at feature
extraction with ``--resample true``), text, utt2spk, spk2utt, utt2emo and utt2gender.
Exits 1 with ``ERROR: <file>: ...`` on a bad corpus tree.
"""

import argparse
import logging
import sys
import time

from espnet_ser.data.datadir import DataDirError
from espnet_ser.data.ravdess import DEFAULT_SEED, DEFAULT_TEST_FRACTION, prepare_ravdess
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Prepare RAVDESS speech Kaldi data directories",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--ravdess_root", required=True,
                   help="the Audio_Speech_Actors_01-24 directory (holds Actor_01..Actor_24)")
    p.add_argument("--out_dir", required=True, help="where the data directories go")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help="seed of the random (emotion-stratified) split")
    p.add_argument("--test_fraction", type=float, default=DEFAULT_TEST_FRACTION,
                   help="share of each emotion put in random_test")
    p.add_argument("--check_audio", type=str2bool, default=False,
                   help="read every wav header and require 48 kHz")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    start = time.time()
    try:
        counts = prepare_ravdess(args.ravdess_root, args.out_dir, seed=args.seed,
                                 test_fraction=args.test_fraction,
                                 check_audio=args.check_audio)
    except DataDirError as e:
        sys.exit(f"ERROR: {e}")
    logging.info("%d utterances in %d sets, done in %.1f s", counts["num_utts"],
                 len(counts["sets"]), time.time() - start)


if __name__ == "__main__":
    main()
