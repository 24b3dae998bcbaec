#!/usr/bin/env bash
# mini_emo with the SSL-head model family (SERTask through ../TEMPLATE/ser.sh): a tiny
# randomly initialised wav2vec 2.0-shaped encoder trained on raw waveforms, mean pooling,
# emotion layer + auxiliary CTC.
#   ./run_ser.sh                          # stages 1-6 (stage 1 is shared with run.sh)
#   ./run_ser.sh --stage 4 --ser_args "--max_epoch 2"
set -euo pipefail
cd "$(dirname "$0")"

../TEMPLATE/ser.sh \
    --nj 2 --decode_nj 2 \
    --train_set train --valid_set valid --test_sets "test" \
    --emotions "ang hap neu sad" --feats_type raw \
    --train_config conf/tuning/train_ser_ssl_tiny.yaml \
    --results_notes local/results_notes.md \
    "$@"
