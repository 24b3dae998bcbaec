#!/usr/bin/env bash
# Run the whole test suite; creates the environment (tools/install.sh) if it is missing.
#   tools/test.sh                 # everything
#   tools/test.sh tests/scoring   # extra arguments go to pytest
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"
tools/install.sh
. tools/activate_python.sh
export PYTHONDONTWRITEBYTECODE=1
exec python -m pytest -q -p no:cacheprovider "${@:-tests}"
