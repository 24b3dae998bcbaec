"""tools/parse_options.sh, exercised through real bash scripts that source it."""
import re
import subprocess
from pathlib import Path

import pytest

PARSE_OPTIONS = Path(__file__).resolve().parents[2] / "tools" / "parse_options.sh"

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
# begin options
stage=1                # first stage to run
stop_stage=6           # last stage to run
use_gpu=false          # run on a GPU (true or false)
test_sets="dev test"   # sets to decode
nj=4
# end options
other=untouched        # outside the block: settable, but not listed by --help
help_message="Usage: $0 [options] <data-dir> <exp-dir>"
. {parse_options}
for v in stage stop_stage use_gpu test_sets nj other; do echo "$v=${{!v}}"; done
echo "argc=$#"
for a in "$@"; do echo "arg=$a"; done
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "demo.sh"
    path.write_text(SCRIPT.format(parse_options=PARSE_OPTIONS))
    path.chmod(0o755)
    return path


def run(script, *args):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          cwd=script.parent)


def values(proc):
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    out = dict(line.split("=", 1) for line in lines if not line.startswith("arg="))
    out["args"] = [line[4:] for line in lines if line.startswith("arg=")]
    return out


def test_defaults_without_arguments(script):
    v = values(run(script))
    assert v["stage"] == "1" and v["use_gpu"] == "false" and v["test_sets"] == "dev test"
    assert v["argc"] == "0"


def test_dash_underscore_and_equals_forms(script):
    v = values(run(script, "--stage", "3", "--stop-stage", "4", "--test_sets", "a b", "--nj=7",
                   "--use-gpu", "true", "--other", "x"))
    assert (v["stage"], v["stop_stage"], v["test_sets"], v["nj"]) == ("3", "4", "a b", "7")
    assert (v["use_gpu"], v["other"]) == ("true", "x")


def test_positional_arguments_are_kept(script):
    v = values(run(script, "--stage", "2", "data/train", "--stage", "5", "exp"))
    assert v["stage"] == "2"
    assert v["args"] == ["data/train", "--stage", "5", "exp"]
    v = values(run(script, "--nj", "2", "--", "--stage", "9"))
    assert v["stage"] == "1" and v["nj"] == "2" and v["args"] == ["--stage", "9"]


def test_empty_value_and_value_that_looks_like_an_option(script):
    v = values(run(script, "--test-sets", "", "--other", "--stage"))
    assert v["test_sets"] == "" and v["other"] == "--stage" and v["stage"] == "1"


@pytest.mark.parametrize("option", ["--foo-bar", "--foo_bar", "--Stage", "--help-message-x"])
def test_unknown_option_fails(script, option):
    proc = run(script, "--stage", "2", option, "1", "data")
    assert proc.returncode == 1
    assert "unknown option" in proc.stderr and "--help" in proc.stderr
    assert option.replace("_", "-") in proc.stderr
    assert "stage=" not in proc.stdout  # the script stopped


def test_option_without_value_fails(script):
    proc = run(script, "--stage")
    assert proc.returncode == 1 and "--stage" in proc.stderr and "needs a value" in proc.stderr


@pytest.mark.parametrize("value", ["yes", "1", "True", ""])
def test_boolean_option_only_takes_true_or_false(script, value):
    proc = run(script, "--use-gpu", value)
    assert proc.returncode == 1 and "true or false" in proc.stderr


def test_non_boolean_option_takes_anything(script):
    assert values(run(script, "--stage", "yes"))["stage"] == "yes"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_option_with_default_and_comment(script, flag):
    proc = run(script, "--stage", "3", flag, "data")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"Usage: {script} [options] <data-dir> <exp-dir>\n")
    assert "stage=" not in out  # exited before the script body
    opts = [line for line in out.splitlines() if line.startswith("  --")]
    assert [re.match(r"  --(\w+)", o).group(1) for o in opts] == [
        "stage", "stop_stage", "use_gpu", "test_sets", "nj"]
    assert re.match(r"  --stage <1> +# first stage to run$", opts[0])  # default, not 3
    assert re.match(r"  --use_gpu <false> +# run on a GPU \(true or false\)$", opts[2])
    assert re.match(r"  --test_sets <dev test> +# sets to decode$", opts[3])
    assert opts[4].rstrip() == "  --nj <4>"
    assert len({o.index("#") for o in opts[:4]}) == 1  # comments aligned
    assert "--other" not in out


def test_help_without_help_message_or_block(tmp_path):
    path = tmp_path / "bare.sh"
    path.write_text(f"set -euo pipefail\nx=1\n. {PARSE_OPTIONS}\necho body\n")
    proc = run(path, "--help")
    assert proc.returncode == 0 and "body" not in proc.stdout


def test_config_file(script, tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text('# comment\n\nstage=5\ntest_sets="x y"  # trailing comment\nuse_gpu=true\n')
    v = values(run(script, "--config", str(conf)))
    assert (v["stage"], v["test_sets"], v["use_gpu"]) == ("5", "x y", "true")
    # the command line wins over the config, wherever --config appears
    v = values(run(script, "--stage", "2", "--config", str(conf), "pos"))
    assert (v["stage"], v["test_sets"], v["args"]) == ("2", "x y", ["pos"])


@pytest.mark.parametrize("content,message", [
    ("bogus=1\n", "unknown option 'bogus'"),
    ("echo hi\n", "expected name=value"),
    ("use_gpu=maybe\n", "true or false"),
])
def test_bad_config_file_fails(script, tmp_path, content, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(content)
    proc = run(script, "--config", str(conf))
    assert proc.returncode == 1 and message in proc.stderr


def test_missing_config_file_fails(script, tmp_path):
    proc = run(script, "--config", str(tmp_path / "nope.conf"))
    assert proc.returncode == 1 and "nope.conf" in proc.stderr


def test_no_helpers_leak_and_function_locals(tmp_path):
    path = tmp_path / "fn.sh"
    path.write_text(f"""set -euo pipefail
main() {{
  local stage=1 file=a
  . {PARSE_OPTIONS}
  echo "stage=$stage file=$file rest=$*"
}}
main --stage 4 --file b c
declare -p | grep -c __po_ || true
declare -F | grep -c __po_ || true
""")
    proc = run(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["stage=4 file=b rest=c", "0", "0"]
