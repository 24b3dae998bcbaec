#!/usr/bin/env python3
"""The RAVDESS recipe's options for ``../TEMPLATE/ser.sh``, one argument a line.

``--inference_model <E>epoch.pth`` for the random protocol (no validation set: its last
epoch); ``--paper_steps S`` reproduces step S of the paper's run (egs/ravdess/README.md).
The user's ``--ser_args`` come after the recipe's, so they win. Errors exit 2.
"""

import argparse
import math
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from espnet_ser.train.scheduler import SCHEDULER_NAME
from espnet_ser.utils.cli import doc_parser
from espnet_ser.utils.safe_load import load_yaml_config

SAVE_STEPS = 100  # the paper's evaluation / save interval (Table II)
PAPER_TRAIN_UTTERANCES = 1152  # the paper's 80 % training split of the 1,440 files


class SettingsError(ValueError):
    """The recipe's options or its config cannot give the requested run."""


def _config_int(config: dict, key: str, path: Path, default: Optional[int] = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


def _last_option(args: List[str], name: str) -> Optional[str]:
    """The value of the last ``--name V`` / ``--name=V`` in ``args`` (argparse's winner)."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def paper_total_steps(config: dict, path: Path, train_utterances: int) -> int:
    """Updates of the paper's whole run: ``max_epoch x (ceil(U / batch_size) // accum_grad)``."""
    batch_type = config.get("batch_type", "folded")
    if batch_type not in ("unsorted", "sorted", "folded"):
        raise SettingsError(f"{path}: --paper_steps counts utterances per batch "
                            f"(batch_size); batch_type {batch_type} is not supported")
    batch_size = _config_int(config, "batch_size", path)
    accum_grad = _config_int(config, "accum_grad", path, 1)
    max_epoch = _config_int(config, "max_epoch", path)
    per_epoch = math.ceil(train_utterances / batch_size) // accum_grad
    if per_epoch < 1:
        raise SettingsError(f"{path}: {train_utterances} utterances in batches of {batch_size} "
                            f"make no update with accum_grad {accum_grad}")
    return max_epoch * per_epoch


def recipe_options(train_config, protocol: str, paper_steps: Optional[int] = None,
                   ser_args: str = "", exp_tag: str = "", save_steps: int = SAVE_STEPS,
                   train_utterances: int = PAPER_TRAIN_UTTERANCES) -> List[str]:
    """The ``ser.sh`` arguments of a RAVDESS run (see the module's description)."""
    path = Path(train_config)
    config = load_yaml_config(path)
    user = shlex.split(ser_args or "")
    if protocol not in ("random", "actor"):
        raise SettingsError(f"--protocol must be random or actor, got {protocol}")
    out: List[str] = []
    if paper_steps is None:
        if protocol == "random":
            given = _last_option(user, "--max_epoch")
            if given is None:
                epoch = _config_int(config, "max_epoch", path)
            elif given.isdigit() and int(given) > 0:
                epoch = int(given)
            else:
                raise SettingsError(f"--ser_args: --max_epoch must be a positive integer, "
                                    f"got {given!r}")
            out += ["--inference_model", f"{epoch}epoch.pth"]
        if exp_tag:
            out += ["--exp_tag", exp_tag]
        if user:
            out += ["--ser_args", shlex.join(user)]
        return out

    if save_steps < 1:
        raise SettingsError(f"--save_steps must be >= 1, got {save_steps}")
    if paper_steps < 1 or paper_steps % save_steps:
        raise SettingsError(f"--paper_steps must be a positive multiple of {save_steps} (the "
                            f"paper evaluated and saved every {save_steps} updates), got "
                            f"{paper_steps}")
    for name in ("--max_epoch", "--num_iters_per_epoch", "--accum_grad"):
        if _last_option(user, name) is not None:
            raise SettingsError(f"--paper_steps sets the run's length; remove {name} from "
                                f"--ser_args")
    scheduler = config.get("scheduler")
    if scheduler != SCHEDULER_NAME:
        raise SettingsError(f"{path}: --paper_steps needs scheduler: {SCHEDULER_NAME} (a "
                            f"schedule of explicit length), found scheduler: {scheduler}")
    total = paper_total_steps(config, path, train_utterances)
    if paper_steps > total:
        raise SettingsError(f"--paper_steps {paper_steps} is past the end of the paper's run "
                            f"({total} updates)")
    accum_grad = _config_int(config, "accum_grad", path, 1)
    ours = ["--num_iters_per_epoch", str(save_steps * accum_grad),
            "--max_epoch", str(paper_steps // save_steps),
            "--scheduler_conf", f"total_steps={total}"]
    return ["--inference_model", f"{paper_steps // save_steps}epoch.pth",
            "--exp_tag", f"{exp_tag}_steps{paper_steps}",
            "--ser_args", shlex.join(ours + user)]


def get_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("--train_config", required=True, help="training YAML")
    p.add_argument("--protocol", default="random", help="random or actor")
    p.add_argument("--paper_steps", type=int, default=None,
                   help="score the checkpoint of this step of the paper's run")
    p.add_argument("--ser_args", default="", help="the user's extra training options")
    p.add_argument("--exp_tag", default="", help="the user's experiment tag")
    p.add_argument("--save_steps", type=int, default=SAVE_STEPS,
                   help="updates between checkpoints (an ESPnet epoch)")
    p.add_argument("--train_utterances", type=int, default=PAPER_TRAIN_UTTERANCES,
                   help="training utterances of the paper's run (its schedule's length)")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    try:
        options = recipe_options(args.train_config, args.protocol, args.paper_steps,
                                 args.ser_args, args.exp_tag, args.save_steps,
                                 args.train_utterances)
    except (SettingsError, ValueError, FileNotFoundError) as e:
        print(f"ravdess_settings: {e}", file=sys.stderr)
        sys.exit(2)
    for arg in options:
        print(arg)


if __name__ == "__main__":
    main()
