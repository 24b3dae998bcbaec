#!/usr/bin/env bash
# IEMOCAP: multi-task SER (wav2vec 2.0 + emotion head + auxiliary character CTC) with the
# 10-fold leave-one-speaker-out protocol of the multi-task paper, through ../TEMPLATE/ser.sh.
#   ./run_ser.sh --iemocap_root /data/IEMOCAP_full_release          # alpha 0.1, all ten folds
#   ./run_ser.sh --train_config conf/tuning/train_ser_w2v2_base_mtl_alpha0.yaml --folds "1 2"
# Fold k tests on speaker k in the order Ses01F Ses01M ... Ses05M. --loso_valid says how
# the model is chosen (sets written by stage 1, see espnet_ser.data.iemocap):
#   partner (default): valid = the other speaker of the same session, train = the remaining
#            eight (data/loso{k}_*); the checkpoint is chosen by valid UA (--nbest_avg).
#   none:    the multi-task paper's protocol (local/run_ser_paper.sh): train = all nine other
#            speakers (data/losonv{k}_*), no epoch chosen on held-out data: the model of the
#            last epoch (ESPnet's latest.pth) is scored. The trainer gets the test speaker as
#            its validation set only to log curves.
#   random:  valid = a seeded emotion-stratified 10 % of the nine other speakers, train = the
#            rest (data/losorv{k}_*); valid shares speakers with train.
# Stage 1 runs once; stages 2-6 run per fold. Stage 6 then pools the ten folds: accuracy =
# correct predictions of all folds / all utterances (the paper's eq. 4), UA of the pooled
# predictions, and the WER of the CTC transcript per fold and its mean over folds (eq. 5),
# in exp/ser_<config>_<loso|losonv|losorv>/score/ and RESULTS.md.
# The options below are this script's; every other option goes to ../TEMPLATE/ser.sh.
set -euo pipefail
cd "$(dirname "$0")"

# begin options
iemocap_root=              # IEMOCAP_full_release (exported to local/data.sh)
folds="1 2 3 4 5 6 7 8 9 10"  # the folds to run (fold k tests on speaker k)
loso_valid=partner         # how the model is chosen: partner, none or random (see above)
train_config=conf/train_ser.yaml  # training YAML
emotions="ang hap neu sad" # emotion codes, in class-index order
stop_stage=6               # last stage to run (6: also the pooled folds)
# end options
help_message="Usage: $0 [options] [options of ../TEMPLATE/ser.sh]"
pass_to=../TEMPLATE/ser.sh
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=egs/TEMPLATE/common.sh
. ../TEMPLATE/common.sh
if [ -n "${iemocap_root}" ]; then export iemocap_root; fi
case ${loso_valid} in  # set-name prefix of each protocol (espnet_ser.data.iemocap.LOSO_SET_PREFIX)
    partner) prefix=loso ;;
    random) prefix=losorv ;;
    none) prefix=losonv ;;
    *) echo "run_ser.sh: --loso_valid must be partner, none or random, got ${loso_valid}" >&2; exit 2 ;;
esac

for k in ${folds}; do
    if [ "${loso_valid}" = none ]; then
        sets=(--valid_set "${prefix}${k}_test" --inference_model latest.pth)
    else
        sets=(--valid_set "${prefix}${k}_valid")
    fi
    ../TEMPLATE/ser.sh \
        --train_set ${prefix}${k}_train "${sets[@]}" --test_sets "${prefix}${k}_test" \
        --suffix _${prefix}${k} --feats_superset iemocap_all --feats_type raw \
        --emotions "${emotions}" --train_config "${train_config}" \
        --results_notes local/results_notes.md --stop_stage "${stop_stage}" "${pass_args[@]}"
done

if [ "${stop_stage}" -ge 6 ]; then
    name=ser_$(basename "${train_config}" .yaml)
    out=exp/${name}_${prefix}/score
    mkdir -p "${out}"
    log "Stage 6: pooling folds ${folds} (log: ${out}/score_cv.log)"
    # shellcheck disable=SC2046
    py_step "${out}/score_cv.log" score_ser_cv --outdir "${out}" \
        --score_dirs $(for k in ${folds}; do ls -d exp/${name}_${prefix}${k}/decode_*/${prefix}${k}_test/score; done)
    results_notes=local/results_notes.md write_results
    cat "${out}/result.txt"
fi
