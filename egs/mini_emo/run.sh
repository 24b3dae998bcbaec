#!/usr/bin/env bash
# mini_emo: the embedded synthetic emotional-speech corpus, joint ASR + SER on a CPU.
#   ./run.sh                          # stages 1-6
#   ./run.sh --stage 4 --stop-stage 6 # retrain, decode and score
set -euo pipefail
cd "$(dirname "$0")"

train_config=conf/train_asr_ser_conformer.yaml
decode_config=conf/decode.yaml

../TEMPLATE/asr_ser.sh \
    --nj 2 --decode_nj 2 \
    --train_set train --valid_set valid --test_sets "test" \
    --emotions "ang hap neu sad" \
    --token_type bpe --nbpe 150 \
    --train_config "${train_config}" --decode_config "${decode_config}" \
    --prosody_baseline true --results_notes local/results_notes.md \
    "$@"
