#!/usr/bin/env bash
# Stage 1 of iemocap: read the release into data/iemocap_all, the five session folds
# data/fold{1..5}_{train,valid,test} (test = Session k, valid = Session (k mod 5) + 1) and the
# ten leave-one-speaker-out folds (test = speaker k in the order Ses01F Ses01M ... Ses05M) of
# the three validation protocols of run_ser.sh --loso_valid: data/losonv{k}_{train,test}
# (none: train = the nine other speakers), data/loso{k}_{train,valid,test} (partner: valid =
# the other speaker of that session) and data/losorv{k}_{train,valid,test} (random). The log
# says how many utterances each protocol keeps and checks the 4-class total against 5,531.
# The corpus root comes from iemocap_root (run.sh --iemocap_root), else db.sh.
set -euo pipefail
. ./path.sh
. ./db.sh
python3 -m espnet_ser.bin.prepare_iemocap --iemocap_root "${iemocap_root:-${IEMOCAP}}" --out_dir data
