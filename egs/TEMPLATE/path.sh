# Environment for the recipe: the toolkit's venv, created by tools/install.sh if missing.
ESPNET_SER_ROOT=${ESPNET_SER_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export ESPNET_SER_ROOT
if [ ! -f "${ESPNET_SER_ROOT}/tools/activate_python.sh" ]; then
    echo "path.sh: no environment yet; running tools/install.sh" >&2
    "${ESPNET_SER_ROOT}/tools/install.sh" || { echo "path.sh: tools/install.sh failed" >&2; exit 1; }
fi
. "${ESPNET_SER_ROOT}/tools/activate_python.sh"
export PATH=${ESPNET_SER_ROOT}/tools:${PATH}
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
