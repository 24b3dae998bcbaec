#!/usr/bin/env bash
# Stage 1 of mini_emo: synthesise the corpus with eSpeak NG and write data/{train,valid,test}.
set -euo pipefail
. ./path.sh
. ./db.sh
nj=${nj:-2}
seed=${seed:-777}
python3 -m espnet_ser.bin.prepare_mini_emo --out_dir data --wav_dir "${MINI_EMO}/wav" \
    --seed "${seed}" --nj "${nj}" "$@"
