"""Check Kaldi data directories; exit 1 naming the file, line and utterance of every problem.

wav.scp commands (``... |``) are refused unless ``--allow_commands true``; they are never
run either way.

Example::

    python -m espnet_ser.bin.validate_data_dir --emotions "ang hap neu sad" data/train data/test
"""

import argparse
import logging
import sys

from espnet_ser.data.datadir import REQUIRED_FILES, DataDirError, validate_data_dir
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dirs", nargs="+")
    p.add_argument("--emotions", default=None, help="space-separated allowed emotion codes")
    p.add_argument("--require", default=" ".join(REQUIRED_FILES), help="files that must exist")
    p.add_argument("--check_audio", type=str2bool, default=True, help="check wav.scp paths exist")
    p.add_argument("--allow_commands", type=str2bool, default=False,
                   help="accept wav.scp commands ending in '|' (they are not run)")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    emotions = args.emotions.split() if args.emotions else None
    failed = []
    for d in args.data_dirs:
        try:
            n = validate_data_dir(d, emotions=emotions, require=args.require.split(),
                                  check_audio_exists=args.check_audio,
                                  allow_commands=args.allow_commands)
        except DataDirError as e:
            for problem in str(e).splitlines():
                logging.error(problem)
            failed.append(d)
            continue
        logging.info(f"{d}: OK ({n} utterances)")
    if failed:
        logging.error(f"{len(failed)} of {len(args.data_dirs)} data directories are not valid: "
                      + " ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
