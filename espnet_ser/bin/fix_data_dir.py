"""Repair a Kaldi data directory in place (espnet_ser.data.datadir.fix_data_dir).

Drops the utterances missing from a per-utterance file, with malformed lines, conflicting
duplicates, invalid ids, empty transcripts, emotions outside --emotions or wav.scp
commands (unless --allow_commands true); sorts; rebuilds spk2utt. The originals go to
DIR/.backup/<YYYYmmdd-HHMMSS>/. Prints "kept N of M utterances" and the count dropped
for each reason; exits 1, changing nothing, if no utterance would remain. Example::

    python -m espnet_ser.bin.fix_data_dir --emotions "ang hap neu sad" data/train
"""

import argparse
import logging
import sys

from espnet_ser.bin.validate_data_dir import add_data_dir_args
from espnet_ser.data.datadir import DataDirError, fix_data_dir
from espnet_ser.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    return add_data_dir_args(p, "keep wav.scp commands ending in '|' (they are not run)")


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    try:
        report = fix_data_dir(args.data_dir, emotions=args.emotions or None,
                              allow_commands=args.allow_commands)
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
