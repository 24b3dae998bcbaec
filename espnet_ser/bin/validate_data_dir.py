"""Check Kaldi data directories; exit 1 naming file, line and utterance of every problem.
wav.scp commands (``... |``) are refused unless ``--allow_commands true`` (never run)."""

import argparse
import logging
import sys

from espnet_ser.data.datadir import REQUIRED_FILES, DataDirError, parse_emotions, validate_data_dir
from espnet_ser.utils.cli import doc_parser, setup_logging, str2bool


def add_data_dir_args(p: argparse.ArgumentParser, commands_help: str) -> argparse.ArgumentParser:
    """--emotions and --allow_commands, shared with fix_data_dir."""
    p.add_argument("--emotions", type=parse_emotions, default=None,
                   help="allowed emotion codes, separated by spaces or commas")
    p.add_argument("--allow_commands", type=str2bool, default=False, help=commands_help)
    return p


def get_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("data_dirs", nargs="+")
    p.add_argument("--require", default=" ".join(REQUIRED_FILES), help="files that must exist")
    p.add_argument("--check_audio", type=str2bool, default=True, help="check wav.scp paths exist")
    return add_data_dir_args(p, "accept wav.scp commands ending in '|' (they are not run)")


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    failed = []
    for d in args.data_dirs:
        try:
            n = validate_data_dir(d, emotions=args.emotions or None, require=args.require.split(),
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
