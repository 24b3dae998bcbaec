#!/usr/bin/env bash
# Table 4 of the multi-task SER paper (Cai et al.): the alpha grid {0, 0.001, 0.01, 0.1} of
# CE + alpha * CTC, each with 10-fold leave-one-speaker-out on IEMOCAP.
#   local/run_ser_paper.sh [--ngpu 1] [--iemocap_root DIR]
# Options given here go to every ./run_ser.sh call.
set -euo pipefail
cd "$(dirname "$0")/.."
for alpha in 0 0.001 0.01 0.1; do
    ./run_ser.sh --train_config conf/tuning/train_ser_w2v2_base_mtl_alpha${alpha}.yaml "$@"
done
