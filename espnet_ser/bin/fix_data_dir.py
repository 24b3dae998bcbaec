"""Repair a Kaldi data directory in place, keeping a backup of the originals.

Keeps the utterances present in every per-utterance file (wav.scp, text, utt2spk,
utt2emo and any of utt2dim, utt2personality, utt2gender, utt2listener, utt2fold);
drops malformed lines, duplicate ids with different values, invalid ids, empty
transcripts, emotions outside --emotions and wav.scp commands (unless
--allow_commands true); sorts; rebuilds spk2utt. The originals go to
DIR/.backup/<YYYYmmdd-HHMMSS>/ (a new folder each run). Prints "kept N of M
utterances" and the count dropped for each reason; exits 1, changing nothing, if no
utterance would remain.

Example::

    python -m espnet_ser.bin.fix_data_dir --emotions "ang hap neu sad" data/train
"""

import argparse
import logging
import sys

from espnet_ser.data.datadir import DataDirError, fix_data_dir
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--emotions", default=None, help="space-separated allowed emotion codes")
    p.add_argument("--allow_commands", type=str2bool, default=False,
                   help="keep wav.scp commands ending in '|' (they are not run)")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    emotions = args.emotions.split() if args.emotions else None
    try:
        report = fix_data_dir(args.data_dir, emotions=emotions, allow_commands=args.allow_commands)
    except (DataDirError, OSError) as e:
        logging.error(str(e))
        sys.exit(1)
    print(f"{args.data_dir}: kept {report.kept} of {report.total} utterances")
    for reason, utts in report.dropped.items():
        print(f"  dropped {len(utts)}: {reason}")
    if report.repaired_lines:
        print(f"  repaired {report.repaired_lines} lines (white space, empty or repeated lines)")
    print(f"  originals saved in {report.backup}")
    if report.untouched:
        logging.warning(f"{args.data_dir}: not filtered, check them: {' '.join(report.untouched)}")


if __name__ == "__main__":
    main()
