"""Stage 2: emotion-token transcripts and the token inventory (espnet_ser.text.emotion_text).
With ``--bpemodel`` and ``--token_list`` (from espnet_ser.bin.extend_pretrained) nothing is
trained."""

import argparse
import logging
import sys
from pathlib import Path

from espnet_ser.data.datadir import DataDirError, parse_emotions
from espnet_ser.text.emotion_text import POSITIONS, TOKEN_TYPES, prepare_token_dir
from espnet_ser.utils.cli import doc_parser, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("--data_dirs", nargs="+", required=True,
                   help="Kaldi data directories; the set name is the directory name")
    p.add_argument("--train_set", required=True, help="set whose text trains the tokenizer")
    p.add_argument("--out_dir", required=True, type=Path)
    p.add_argument("--emotions", required=True, type=parse_emotions,
                   help="emotion codes, separated by spaces or commas")
    p.add_argument("--emo_token_position", choices=POSITIONS, default="end")
    p.add_argument("--token_type", choices=TOKEN_TYPES, default="bpe")
    p.add_argument("--nbpe", type=int, default=150, help="sentencepiece vocabulary size")
    p.add_argument("--bpemode", choices=("bpe", "unigram"), default="unigram")
    p.add_argument("--bpemodel", type=Path, default=None,
                   help="pretrained sentencepiece model to use instead of training one "
                   "(needs --token_list)")
    p.add_argument("--token_list", type=Path, default=None,
                   help="token list of the pretrained model (with --bpemodel)")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging()
    data_dirs = {Path(d).name: Path(d) for d in args.data_dirs}
    if len(data_dirs) != len(args.data_dirs):
        sys.exit(f"prepare_text: two data directories share a name: {args.data_dirs}")
    try:
        prepare_token_dir(
            data_dirs, args.train_set, args.out_dir, args.emotions,
            position=args.emo_token_position, token_type=args.token_type,
            nbpe=args.nbpe, bpemode=args.bpemode,
            bpemodel=args.bpemodel, token_list=args.token_list,
        )
    except (DataDirError, ValueError) as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
