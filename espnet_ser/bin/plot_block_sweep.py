#!/usr/bin/env python3
"""The GST paper's Figure 3: WER and UA against the one conditioned encoder block.

    python -m espnet_ser.bin.plot_block_sweep --recipe_dir . --base asr_train_asr_ser_conformer_ptgst

writes ``exp/<base>_block_sweep_<tag>/decode_<dec>/block_sweep.{png,md,json}`` from every
``exp/<base>_block<k>_<tag>_cv``; or, for given files::

    python -m espnet_ser.bin.plot_block_sweep --outdir OUT --blocks "0 1 2" \
        b0/scores.json b1/scores.json b2/scores.json [--reference all/scores.json]
"""

import logging
from typing import List, Optional

from espnet_ser.scoring.block_sweep import write_block_sweep, write_block_sweeps
from espnet_ser.scoring.results import ScoringError
from espnet_ser.utils.cli import doc_parser, exit_on_error, setup_logging


def get_parser():
    p = doc_parser(__doc__)
    p.add_argument("scores", nargs="*", help="scores.json of each block (with --outdir and --blocks)")
    p.add_argument("--recipe_dir", default=None, help="find the block runs of --base in RECIPE_DIR/exp")
    p.add_argument("--base", default=None,
                   help="experiment name before _block<k> (e.g. asr_train_asr_ser_conformer_ptgst)")
    p.add_argument("--outdir", default=None, help="output directory (with explicit score files)")
    p.add_argument("--blocks", default=None, help="0-based block of each score file, e.g. '0 1 2'")
    p.add_argument("--reference", default=None, help="scores.json of the run conditioning every block")
    p.add_argument("--title", default="", help="figure and table title (explicit files)")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging()
    with exit_on_error("plot_block_sweep", errors=(ScoringError, OSError)):
        if args.recipe_dir:
            if args.scores or args.outdir or args.blocks or args.reference:
                parser.error("--recipe_dir excludes score files, --outdir, --blocks and --reference")
            if not args.base:
                parser.error("--recipe_dir needs --base")
            for (tag, decode_dir), outdir in write_block_sweeps(args.recipe_dir, args.base).items():
                logging.info(f"{args.base} ({tag}, {decode_dir}): {outdir}/block_sweep.png")
        else:
            if not args.scores or not args.outdir or args.blocks is None:
                parser.error("give score files with --outdir and --blocks, or --recipe_dir and --base")
            try:
                blocks = [int(b) for b in args.blocks.split()]
            except ValueError:
                parser.error(f"--blocks: expected 0-based block numbers, got {args.blocks!r}")
            if len(blocks) != len(args.scores) or len(set(blocks)) != len(blocks):
                parser.error(f"--blocks: {len(blocks)} distinct numbers are needed for "
                             f"{len(args.scores)} score files, got {args.blocks!r}")
            write_block_sweep(dict(zip(blocks, args.scores)), args.outdir, args.reference, args.title)


if __name__ == "__main__":
    main()
