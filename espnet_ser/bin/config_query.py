#!/usr/bin/env python3
"""Print one value of a YAML (or JSON) config, so the recipe shells read no YAML themselves.

    python -m espnet_ser.bin.config_query --config conf/fbank.yaml --key n_mels        # 80
    python -m espnet_ser.bin.config_query --config conf/train.yaml \\
        --key model_conf.ctc_weight --default 0

Booleans print as ``true`` / ``false``, lists and mappings as JSON; a missing or null key
prints ``--default``, else it is an error naming the file and the key (exit 1).
"""

import argparse
import json
import sys
from typing import Any, Optional, Sequence

import yaml


def query(path: str, key: str) -> Any:
    """The value at dotted ``key`` of ``path`` (None if missing); ValueError under a non-mapping."""
    with open(path, encoding="utf-8") as f:
        value = yaml.safe_load(f)
    walked = []
    for part in key.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError(f"{'.'.join(walked) or 'the top level'} is not a mapping")
        value = value.get(part)
        walked.append(part)
    return value


def render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Print one value of a YAML config")
    parser.add_argument("--config", required=True, help="YAML or JSON file")
    parser.add_argument("--key", required=True, help="dotted key, e.g. frontend_conf.n_mels")
    parser.add_argument("--default", default=None, help="printed when the key is missing or null")
    args = parser.parse_args(cmd)
    try:
        value = query(args.config, args.key)
    except (OSError, yaml.YAMLError, ValueError) as e:
        sys.exit(f"config_query: {args.config}: cannot read key '{args.key}': {e}")
    if value is None:
        if args.default is None:
            sys.exit(f"config_query: {args.config}: no key '{args.key}' (and no --default)")
        value = args.default
    print(render(value))


if __name__ == "__main__":
    main()
