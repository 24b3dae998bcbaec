#!/usr/bin/env bash
# Stage 1 of mini_emo: synthesise the corpus with eSpeak NG and write data/{train,valid,test}.
# Corpus options (sizes, speakers, seed) can be passed in mini_emo_opts, e.g.
#   mini_emo_opts="--num_train_utts 200" ./run.sh
set -euo pipefail
. ./path.sh
. ./db.sh
nj=${nj:-2}
# shellcheck disable=SC2086
python3 -m espnet_ser.bin.prepare_mini_emo --out_dir data --wav_dir "${MINI_EMO}/wav" \
    --nj "${nj}" ${mini_emo_opts:-}
