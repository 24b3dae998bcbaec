#!/usr/bin/env bash
# Stage 1 of ravdess: parse the file-name codes of the speech part into data/ravdess_all, the
# paper's random 80:20 split stratified by emotion (data/random_{train,test}, seeded) and the
# speaker-independent split (data/actor_train actors 1-18, actor_valid 19-20, actor_test 21-24).
# The corpus root comes from ravdess_root (run.sh --ravdess_root), else db.sh.
set -euo pipefail
. ./path.sh
. ./db.sh
python3 -m espnet_ser.bin.prepare_ravdess --ravdess_root "${ravdess_root:-${RAVDESS}}" --out_dir data
