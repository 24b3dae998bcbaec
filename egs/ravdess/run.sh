#!/usr/bin/env bash
# RAVDESS: eight-emotion SER with a self-supervised encoder and mean pooling (the SSL
# comparison paper's setup), through ../TEMPLATE/ser.sh.
#   ./run.sh --ravdess_root /data/RAVDESS                                # wav2vec2-base, random 80:20
#   ./run.sh --protocol actor --train_config conf/tuning/train_ser_hubert_large.yaml
# The options below are this script's; every other option goes to ../TEMPLATE/ser.sh
# (see its --help).
#   random: the paper's seeded 80:20 split stratified by emotion. It has no validation set
#           (the paper evaluated on the test split while training); the test split is given to
#           the trainer only to log curves, and the model of the last epoch is scored, so no
#           choice is made on the test set.
#   actor:  speaker-independent: train actors 1-18, validate on 19-20 (best epoch by valid UA),
#           test on 21-24.
# --paper_steps S (a multiple of 100): the checkpoint of step S of the paper's run (1,300 /
#   800 / 500 / 600 for wav2vec2-base / XLS-R 300M / XLS-R 1B / HuBERT-large). Trains
#   "epochs" of 100 updates (--num_iters_per_epoch 100 x accum_grad mini-batches) for S/100
#   epochs under the learning-rate schedule of the paper's whole run (scheduler_conf
#   total_steps=1440: 10 epochs x 144 updates) and scores <S/100>epoch.pth, in
#   exp/ser_<config>_steps<S>_<protocol>. The settings come from
#   `python -m espnet_ser.bin.ravdess_settings` (see its --help).
#   ./run.sh --paper_steps 1300 --stage 4
set -euo pipefail
cd "$(dirname "$0")"

# begin options
ravdess_root=              # the RAVDESS speech corpus (exported to local/data.sh)
protocol=random            # random or actor (see above)
train_config=conf/train_ser.yaml  # training YAML
paper_steps=               # score the checkpoint of this step of the paper's run (see above)
ser_args=                  # extra options for training
exp_tag=                   # appended to the config name in the experiment name
# end options
help_message="Usage: $0 [options] [options of ../TEMPLATE/ser.sh]"
pass_to=../TEMPLATE/ser.sh
. ./path.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
if [ -n "${ravdess_root}" ]; then
    [ -d "${ravdess_root}" ] || { echo "run.sh: --ravdess_root ${ravdess_root}: no such directory" >&2; exit 2; }
    export ravdess_root
fi
case ${protocol} in
    random) sets=(--train_set random_train --valid_set random_test --test_sets random_test) ;;
    actor) sets=(--train_set actor_train --valid_set actor_valid --test_sets actor_test) ;;
    *) echo "run.sh: --protocol must be random or actor, got ${protocol}" >&2; exit 2 ;;
esac
# the scored model, --paper_steps' training options, the user's --ser_args / --exp_tag
_settings=$(python3 -m espnet_ser.bin.ravdess_settings --train_config "${train_config}" \
    --protocol "${protocol}" ${paper_steps:+--paper_steps "${paper_steps}"} \
    --ser_args="${ser_args}" --exp_tag="${exp_tag}") || exit 2
mapfile -t settings < <(printf '%s' "${_settings}")  # one argument a line

../TEMPLATE/ser.sh \
    --emotions "neu cal hap sad ang fea dis sur" \
    --feats_type raw --fs 16000 --resample true --feats_superset ravdess_all \
    "${sets[@]}" "${settings[@]}" --suffix "_${protocol}" \
    --train_config "${train_config}" --results_notes local/results_notes.md \
    "${pass_args[@]}"
