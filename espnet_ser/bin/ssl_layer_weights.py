"""Print (and plot) the softmax of a model file's learned SSL layer weights (``layer: weighted``)::

    python -m espnet_ser.bin.ssl_layer_weights --model_file exp/x/valid.ua.best.pth \\
        --png exp/x/layer_weights.png --json exp/x/layer_weights.json
"""

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import torch

from espnet_ser.utils.cli import doc_parser, setup_logging
from espnet_ser.utils.io import atomic_write_text
from espnet_ser.utils.safe_load import UnsafeFileError, load_model_state

KEY = "encoder.layer_weights"


def layer_weights(model_file: Path) -> List[float]:
    """Softmax of the model's ``encoder.layer_weights``; ValueError naming the file if absent."""
    state = load_model_state(model_file)
    if KEY not in state:
        raise ValueError(f"{model_file}: no {KEY}: not a model with an SSL encoder and "
                         "layer: weighted")
    return torch.softmax(state[KEY].float(), dim=0).tolist()


def main(cmd: Optional[List[str]] = None) -> None:
    p = doc_parser(__doc__)
    p.add_argument("--model_file", type=Path, required=True)
    p.add_argument("--png", type=Path, default=None, help="bar chart of the weights")
    p.add_argument("--json", type=Path, default=None, help="the weights as a JSON list")
    args = p.parse_args(cmd)
    setup_logging()
    try:
        weights = layer_weights(args.model_file)
    except (ValueError, FileNotFoundError, UnsafeFileError) as e:
        logging.error(str(e))
        sys.exit(1)
    print(f"{args.model_file}: SSL layer weights (softmax; 0 = input to the first layer)")
    for i, w in enumerate(weights):
        print(f"  layer {i:2d}: {w:.4f} {'#' * round(40 * w)}")
    if args.png is not None:
        from espnet_ser.ssl.encoder import plot_layer_weights

        plot_layer_weights(weights, str(args.png))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(weights) + "\n")


if __name__ == "__main__":
    main()
