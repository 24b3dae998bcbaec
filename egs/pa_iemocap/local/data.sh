#!/usr/bin/env bash
# Stage 1 of pa_iemocap: the lexical IEMOCAP 4-class utterances (exc merged into hap) joined to
# ocean.csv by dialogue and speaker gender (checked against tipi_labels.csv when it is there),
# into data/pa_iemocap_all and data/fold{1..5}_{train,valid,test} (valid = the F part of
# session k, test = its M part, train = the other four sessions), each with utt2personality,
# utt2dialog and utt2gender besides the usual files. The log gives the counts.
# The roots come from iemocap_root / pa_iemocap_root (run.sh options), else db.sh.
set -euo pipefail
. ./path.sh
. ./db.sh
python3 -m espnet_ser.bin.prepare_pa_iemocap --iemocap_root "${iemocap_root:-${IEMOCAP}}" \
    --pa_iemocap_root "${pa_iemocap_root:-${PA_IEMOCAP}}" --out_dir data
