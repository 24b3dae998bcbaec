#!/usr/bin/env bash
# PA-IEMOCAP: SER conditioned on the speaker's and the listener's Big-Five traits (Yuan et al.),
# 5 folds: valid = the F part of session k, test = its M part, train = the other four sessions.
#   ./run.sh --iemocap_root /data/IEMOCAP_full_release --pa_iemocap_root /data/PA-IEMOCAP
# Only stage 1 (data preparation, local/data.sh) exists so far. Stages 2-6 (personality
# fusion training, personality recognition, decoding, scoring, Table 2) come with the later
# parts of issue 12; asking for them is an error.
set -euo pipefail
cd "$(dirname "$0")"

# begin options
iemocap_root=              # IEMOCAP_full_release (default IEMOCAP in db.sh)
pa_iemocap_root=           # the directory of ocean.csv and tipi_labels.csv (default PA_IEMOCAP in db.sh)
stage=1                    # first stage to run
stop_stage=1               # last stage to run (only stage 1 exists so far)
# end options
help_message="Usage: $0 [options]
Stage 1 only for now: data preparation into data/ (log: exp/log/data.log).
Stages 2-6 (training, personality recognition, decoding, scoring) are not written yet."
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=egs/TEMPLATE/common.sh
. ../TEMPLATE/common.sh
if [ $# -gt 0 ]; then echo "$0: unexpected arguments: $*" >&2; exit 2; fi
if [ "${stop_stage}" -gt 1 ]; then
    echo "$0: --stop_stage ${stop_stage}: only stage 1 exists so far (stages 2-6 are not written yet)" >&2
    exit 2
fi
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi
if [ -n "${pa_iemocap_root}" ]; then export pa_iemocap_root; fi
mkdir -p exp/log

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation -> data/ (log: exp/log/data.log)"
    local/data.sh > exp/log/data.log 2>&1 || fail exp/log/data.log
    grep -E "consensus lines|: [0-9]+ utterances, " exp/log/data.log || true
fi
