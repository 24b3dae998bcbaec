"""Add emotion tokens to a stock ESPnet ASR model (model-zoo layout).

Example: ``python -m espnet_ser.bin.extend_pretrained --asr_config zoo/exp/asr_x/config.yaml
--asr_model_file zoo/exp/asr_x/valid.acc.ave_10best.pth --add_tokens "<ang> <hap> <neu> <sad>"
--output_dir exp/pretrained_emo``. See espnet_ser.asr.pretrained.
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr_config", required=True, help="config.yaml of the stock model")
    p.add_argument("--asr_model_file", required=True, help="state dict of the stock model (.pth)")
    p.add_argument("--add_tokens", required=True,
                   help='space-separated tokens to add, e.g. "<ang> <hap> <neu> <sad>"')
    p.add_argument("--output_dir", required=True)
    p.add_argument("--bpemodel", default=None, help="sentencepiece model (default: from the config)")
    p.add_argument("--stats_file", default=None,
                   help="global_mvn statistics (default: normalize_conf.stats_file of the config)")
    p.add_argument("--token_list", default=None, help="token list file (default: from the config)")
    p.add_argument("--dumped_feats", type=str2bool, default=False,
                   help="write a config that reads dumped fbank (frontend: null, input_size: n_mels)")
    p.add_argument("--verify", type=str2bool, default=True,
                   help="compare the written model with the stock one on a pseudo-random utterance")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    from espnet_ser.asr.pretrained import PretrainedError, extend_pretrained
    try:
        extend_pretrained(args.asr_config, args.asr_model_file, args.add_tokens.split(), args.output_dir,
                          bpemodel=args.bpemodel, stats_file=args.stats_file, token_list=args.token_list,
                          dumped_feats=args.dumped_feats, verify=args.verify)
    except PretrainedError as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
