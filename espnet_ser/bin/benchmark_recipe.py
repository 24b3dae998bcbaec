"""Run a recipe command; print its wall time, the peak RSS of its largest process and of its
whole process tree (sampled from /proc every ``--interval`` seconds; Linux only)::

    python -m espnet_ser.bin.benchmark_recipe --cwd egs/mini_emo -- ./run.sh --stage 1
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def tree_rss_bytes(root_pid: int) -> int:
    """Sum of RSS over ``root_pid`` and its descendants (0 where /proc is unreadable)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, rss_pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append((int(entry), rss_pages))
    total, stack = 0, [root_pid]
    try:
        with open(f"/proc/{root_pid}/statm") as f:
            total = int(f.read().split()[1])
    except OSError:
        pass
    while stack:
        for pid, rss in children.get(stack.pop(), []):
            total += rss
            stack.append(pid)
    return total * os.sysconf("SC_PAGE_SIZE")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cwd", type=Path, default=Path("."), help="directory to run the command in")
    p.add_argument("--interval", type=float, default=1.0, help="memory sampling period (s)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command after --")
    return p


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("benchmark_recipe: no command given (put it after --)")
    start = time.time()
    proc = subprocess.Popen(command, cwd=args.cwd)
    peak_tree = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, tree_rss_bytes(proc.pid))
        time.sleep(args.interval)
    wall = time.time() - start
    peak_proc = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    figures = dict(command=" ".join(command), returncode=proc.returncode,
                   wall_seconds=round(wall, 1),
                   peak_rss_largest_process_mb=round(peak_proc / 2**20, 1),
                   peak_rss_process_tree_mb=round(peak_tree / 2**20, 1))
    for k, v in figures.items():
        print(f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
