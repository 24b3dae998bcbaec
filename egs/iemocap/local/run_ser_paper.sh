#!/usr/bin/env bash
# Table 4 of the multi-task SER paper (Cai et al.): the alpha grid {0, 0.001, 0.01, 0.1} of
# CE + alpha * CTC, each with 10-fold leave-one-speaker-out on IEMOCAP, as the paper ran it:
# each fold trains on the nine other speakers, no epoch is chosen on held-out data (the
# model of the last epoch is scored) and accuracy is pooled over the ten folds
# (./run_ser.sh --loso_valid none; exp/ser_<config>_losonv/score/).
#   local/run_ser_paper.sh [--ngpu 1] [--iemocap_root DIR] [--loso_valid partner|random]
# Options given here go to every ./run_ser.sh call (a later --loso_valid wins).
set -euo pipefail
cd "$(dirname "$0")/.."
for alpha in 0 0.001 0.01 0.1; do
    ./run_ser.sh --loso_valid none --train_config conf/tuning/train_ser_w2v2_base_mtl_alpha${alpha}.yaml "$@"
done
