"""Write the training config for fine-tuning a model made by ``extend_pretrained``.

Example (what stage 4 of ``egs/TEMPLATE/asr_ser.sh`` runs with ``--pretrained_dir``)::

    python -m espnet_ser.bin.pretrained_train_config --pretrained_dir exp/pretrained_gigaspeech \\
        --train_config conf/tuning/train_asr_ser_conformer_ptgst.yaml \\
        --output exp/asr_x/train_config.yaml

The frontend, normalize, encoder, decoder and CTC architecture (classes and ``*_conf``
blocks, with their defaults written out), the input size, the tokenizer and
``init_param: [<pretrained_dir>/model.pth, ...]`` come from
``<pretrained_dir>/config.yaml``; the training config adds what this toolkit adds (style
encoder, the style arguments of ``encoder: gst_conformer``) and the training settings.
Every field taken from the pretrained config is logged and listed at the top of the
written file; a training-config value it replaces is logged as a warning (for example
``encoder_conf.rel_pos_type: latest`` against a model trained with ESPnet's legacy
relative positional encoding). A component class that neither is nor extends the
pretrained one (``encoder: transformer`` against a conformer) is an error naming the field.
``--check true`` only logs, writing nothing. Settings of the merged architecture can
still be overridden after ``--config`` on the training command line
(``--encoder_conf dropout_rate=0.2``).
"""

import argparse
import logging
import sys
from typing import List, Optional

from espnet_ser.utils.cli import setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained_dir", required=True,
                   help="output directory of espnet_ser.bin.extend_pretrained")
    p.add_argument("--train_config", required=True, help="the recipe's training YAML")
    p.add_argument("--output", default=None, help="merged training YAML to write")
    p.add_argument("--check", type=str2bool, default=False,
                   help="log the merge without writing (no --output needed)")
    p.add_argument("--log_level", default="INFO")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    from espnet_ser.utils.offline import quiet_nltk_downloads

    quiet_nltk_downloads()
    from espnet_ser.asr.pretrained import PretrainedError, write_pretrained_train_config

    if not args.check and args.output is None:
        logging.error("--output is required (or --check true)")
        sys.exit(2)
    try:
        write_pretrained_train_config(
            args.pretrained_dir, args.train_config, None if args.check else args.output
        )
    except PretrainedError as e:
        logging.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
