#!/usr/bin/env bash
# IEMOCAP: joint ASR + SER with 5-fold session cross-validation (the GST paper's setup).
#   ./run.sh --iemocap_root /data/IEMOCAP_full_release            # stages 1-6, all folds
#   ./run.sh --folds "1" --stage 4 --train_config conf/tuning/train_asr_ser_conformer_gst.yaml
# The options below are this script's; every other option goes to ../TEMPLATE/asr_ser.sh
# (see its --help). Stage 1 runs once; stages 2-6 run per fold, and
# stage 6 also writes the table across folds (mean and pooled) into RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")"

# begin options
iemocap_root=              # IEMOCAP_full_release (exported to local/data.sh)
folds="1 2 3 4 5"          # the folds to run
train_config=conf/train_asr_ser_conformer.yaml  # training YAML
decode_config=conf/decode.yaml                  # decoding YAML
stop_stage=6               # last stage to run (6: also the table across folds)
# end options
help_message="Usage: $0 [options] [options of ../TEMPLATE/asr_ser.sh]"
pass_to=../TEMPLATE/asr_ser.sh
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=egs/TEMPLATE/common.sh
. ../TEMPLATE/common.sh
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi

# --nbpe 5000 keeps nearly every training word whole (the paper's units were words); with
# --pretrained_dir the pretrained model's own sentencepiece model is used instead.
for k in ${folds}; do
    ../TEMPLATE/asr_ser.sh \
        --train_set fold${k}_train --valid_set fold${k}_valid --test_sets "fold${k}_test" \
        --suffix _fold${k} --feats_superset iemocap_all \
        --emotions "ang hap neu sad" --token_type bpe --nbpe 5000 \
        --train_config "${train_config}" --decode_config "${decode_config}" \
        --results_notes local/results_notes.md --stop_stage "${stop_stage}" "${pass_args[@]}"
done

if [ "${stop_stage}" -ge 6 ]; then
    log "Stage 6: table across folds ${folds} (log: exp/log/score_cv.log)"
    py_step exp/log/score_cv.log score_cv --recipe_dir . --folds "${folds}" --emotions "ang hap neu sad"
    results_notes=local/results_notes.md write_results
fi
