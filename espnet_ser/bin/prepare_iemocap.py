"""Write IEMOCAP Kaldi data directories: all utterances and five leave-one-session-out folds.

    python -m espnet_ser.bin.prepare_iemocap --iemocap_root /corpora/IEMOCAP_full_release \\
        --out_dir data [--emotions "ang hap neu sad"] [--merge_exc_into_hap true]

writes ``data/iemocap_all`` and ``data/fold{1..5}_{train,valid,test}`` (test = Session k,
valid = Session k mod 5 + 1, train = the other three), each with wav.scp (absolute
paths), text, utt2spk, spk2utt, utt2emo and utt2dim (valence activation dominance).
Exits 1 with ``ERROR: <file>:<line>: ...`` on a bad corpus tree.
"""

import argparse
import logging
import sys
import time

from espnet_ser.data.datadir import DataDirError
from espnet_ser.data.iemocap import DEFAULT_EMOTIONS, prepare_iemocap
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Prepare IEMOCAP Kaldi data directories (5 session folds)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--iemocap_root", required=True,
                   help="the IEMOCAP_full_release directory (holds Session1..Session5)")
    p.add_argument("--out_dir", required=True, help="where iemocap_all and fold*_* go")
    p.add_argument("--emotions", default=" ".join(DEFAULT_EMOTIONS),
                   help="space-separated consensus labels to keep")
    p.add_argument("--merge_exc_into_hap", type=str2bool, default=True,
                   help="relabel exc (excited) as hap")
    p.add_argument("--check_audio", type=str2bool, default=False,
                   help="read every wav header and require 16 kHz mono")
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
                                 check_audio=args.check_audio)
    except DataDirError as e:
        sys.exit(f"ERROR: {e}")
    logging.info("%d utterances in %d sets, done in %.1f s", counts["num_utts"],
                 len(counts["sets"]), time.time() - start)


if __name__ == "__main__":
    main()
