"""Repair a Kaldi data directory in place (espnet_ser.data.datadir.fix_data_dir), keeping
the originals in DIR/.backup/<YYYYmmdd-HHMMSS>/. Prints "kept N of M utterances" and the
count dropped for each reason; exits 1, changing nothing, if no utterance would remain.
"""

import argparse
import logging
import sys

from espnet_ser.bin.validate_data_dir import add_data_dir_args
from espnet_ser.data.datadir import DataDirError, fix_data_dir
from espnet_ser.utils.cli import doc_parser, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
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
