"""Synthesise the mini_emo corpus into ``--out_dir/{train,valid,test}`` and corpus.json;
re-running with the same arguments is a no-op (``.mini_emo.done``)."""

import argparse
import logging
import sys
import time
from dataclasses import fields

from espnet_ser.data.mini_emo import CorpusConfig, prepare_mini_emo
from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    d = CorpusConfig()
    p = argparse.ArgumentParser(
        description="Synthesise the mini_emo corpus (eSpeak NG) into Kaldi data directories",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out_dir", required=True, help="where data/{train,valid,test} go")
    p.add_argument("--wav_dir", required=True, help="where the 16 kHz wav files go")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--nj", type=int, default=1, help="synthesis worker processes")
    for s in ("train", "valid", "test"):
        p.add_argument(f"--num_{s}_utts", type=int, default=getattr(d, f"num_{s}_utts"))
        p.add_argument(f"--num_{s}_spk", type=int, default=getattr(d, f"num_{s}_spk"))
    p.add_argument("--unseen_fraction", type=float, default=d.unseen_fraction,
                   help="share of valid/test sentences never spoken in train")
    p.add_argument("--train_sentence_reuse", type=int, default=d.train_sentence_reuse,
                   help="about how many train speakers say each train sentence")
    p.add_argument("--overwrite", type=str2bool, default=False,
                   help="replace a corpus made with other arguments in --out_dir")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    cfg = CorpusConfig(**{f.name: getattr(args, f.name) for f in fields(CorpusConfig)})
    if args.nj < 1:
        sys.exit(f"--nj must be >= 1, got {args.nj}")
    try:
        cfg.check()
    except ValueError as e:
        sys.exit(f"prepare_mini_emo: {e}")
    start = time.time()
    try:
        prepare_mini_emo(cfg, args.out_dir, args.wav_dir, nj=args.nj, overwrite=args.overwrite)
    except FileExistsError as e:
        sys.exit(f"prepare_mini_emo: {e}")
    logging.info("done in %.1f s", time.time() - start)


if __name__ == "__main__":
    main()
