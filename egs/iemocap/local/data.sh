#!/usr/bin/env bash
# Stage 1 of iemocap: read the release into data/iemocap_all, the five session folds
# data/fold{1..5}_{train,valid,test} (test = Session k, valid = Session (k mod 5) + 1) and the
# ten leave-one-speaker-out folds data/loso{1..10}_{train,valid,test} (test = speaker k in the
# order Ses01F Ses01M ... Ses05M, valid = the other speaker of that session).
# The corpus root comes from iemocap_root (run.sh --iemocap_root), else db.sh.
set -euo pipefail
. ./path.sh
. ./db.sh
python3 -m espnet_ser.bin.prepare_iemocap --iemocap_root "${iemocap_root:-${IEMOCAP}}" --out_dir data
