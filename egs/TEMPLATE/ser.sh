#!/usr/bin/env bash
# Utterance-level speech emotion recognition recipe (SERTask: encoder -> pooling -> classifier,
# optional auxiliary CTC): the staged pipeline the SER recipes (egs/*/run_ser.sh, egs/ravdess)
# call. Same stage numbers and conventions as asr_ser.sh:
#   1. data preparation (local/data.sh) and validation of data/<set>/
#   2. class ids (emotion_id) and the character inventory of the CTC head -> data/token_char_emonone/
#   3. model input for every set (nj jobs)                                 -> dump/<feats_type>/<set>/
#        raw:        16 kHz waveforms (resampled when needed), for encoder: ssl
#        ssl_states: hidden states of a frozen SSL encoder (freeze: all), computed once from
#                    the training config's encoder_conf; training reads them (the fast path)
#        fbank:      log-mel filterbanks + global CMVN, for ESPnet's encoders
#   4. training with ESPnet's trainer (SERTask); a config with a personality_fusion also
#      reads data/<set>/utt2personality (data name "personality")            -> exp/<ser_exp>/
#   5. checkpoint averaging + classification (argmax, posteriors, CTC greedy transcript)
#                                                                          -> exp/<ser_exp>/decode_<tag>/<set>/
#   6. scoring (WA, UA, classification report, confusion, WER of the CTC transcript,
#      training curves; learned SSL layer weights for layer: weighted) + RESULTS.md
# Cross-validation recipes call this once per fold with --suffix _<fold> --feats_superset <all>.
# A finished stage leaves a .done marker; re-running it is skipped unless --force true.
set -euo pipefail

SECONDS=0

# begin options
stage=1                    # first stage to run
stop_stage=6               # last stage to run
force=false                # rerun stages that already have a .done marker
nj=4                       # parallel jobs for feature extraction
decode_nj=4                # parallel jobs for inference
ngpu=0                     # GPUs for training (0: CPU)
num_nodes=1                # nodes for multi-node training (ESPnet's launcher)
seed=0                     # random seed for training
train_set=train            # training set name under data/
valid_set=valid            # validation set name under data/
test_sets="test"           # sets to classify and score
emotions="ang hap neu sad" # emotion codes, in class-index order
feats_type=raw             # raw (16 kHz waves), ssl_states (frozen SSL hidden states) or fbank
compress_states=false      # ssl_states: Kaldi compressed matrices (8 bits a value, 1/4 the disk; lossy)
fs=16000                   # sample rate of raw dumps (SSL models are trained at 16 kHz)
feats_config=              # filterbank config for feats_type fbank (default: <root>/conf/fbank.yaml)
feats_superset=            # dumped set the other sets are subsets of (extract once, e.g. for folds)
suffix=                    # appended to the token dir and experiment names (e.g. _loso1)
exp_tag=                   # appended to the config name in the default experiment name
train_config=              # training YAML (required for stages 3 with ssl_states, and 4)
ser_exp=                   # experiment dir (default: exp/ser_<config name><exp_tag><suffix>)
ser_args=                  # extra options for training, e.g. "--max_epoch 1"
inference_args=            # extra options for inference
nbest_avg=1                # number of checkpoints to average (1: the best one)
avg_metric=valid.ua        # validation metric to pick the checkpoints by
inference_model=           # model file to classify with (default: the averaged one)
decode_threads=1           # torch threads per inference job
inference_ngpu=0           # classify on a GPU (1) or the CPU (0)
results_notes=             # text file whose content heads RESULTS.md
allow_commands=false       # run wav.scp entries that are commands ("... |"); refused otherwise
audio_on_error=fail        # unreadable / truncated / empty audio: fail, or reject (listed in dump/*/<set>/reject_list)
resample=true              # resample audio at another rate than fs (else an error)
# end options

help_message="Usage: $0 --train_config <yaml> [options]
Runs the utterance-level SER recipe; see the option list below."

. ./path.sh
. ./cmd.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -eq 0 ] || { log "unexpected argument(s): $*"; echo "${help_message}"; exit 2; }
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ -z "${train_config}" ]; then
    log "--train_config is required for stage 4"; echo "${help_message}"; exit 2
fi
case ${feats_type} in raw|ssl_states|fbank) ;; *) log "--feats_type: raw, ssl_states or fbank"; exit 2 ;; esac
case ${compress_states} in true|false) ;; *) log "--compress_states: true or false"; exit 2 ;; esac
if [ "${feats_type}" = ssl_states ] && [ -z "${train_config}" ]; then
    log "--feats_type ssl_states needs --train_config (its encoder_conf says what to extract)"; exit 2
fi

[ -n "${feats_config}" ] || feats_config=${ESPNET_SER_ROOT}/conf/fbank.yaml
token_dir=data/token_char_emonone${suffix}
conf_name=$(basename "${train_config:-model}" .yaml)
case ${feats_type} in
    raw) dump=dump/raw_${fs} ;;
    fbank) dump=dump/fbank ;;
    ssl_states) dump=dump/ssl_states_${conf_name}  # the hidden states depend on the config
                if ${compress_states}; then dump+=_compressed; fi ;;
esac
[ -n "${ser_exp}" ] || ser_exp=exp/ser_${conf_name}${exp_tag}${suffix}
[ -n "${inference_model}" ] || inference_model=${avg_metric}.ave_${nbest_avg}best.pth
decode_tag=$(basename "${inference_model}" .pth)
# each set once (a protocol without a validation set may validate on its test set)
all_sets=$(echo ${train_set} ${valid_set} ${test_sets} | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')

mkdir -p exp/log
if run_stage 1 data/.stage1.done; then stage1_data; fi
if run_stage 2 "${token_dir}/.done"; then
    stage2_text "class ids and character inventory" --emo_token_position none --token_type char
fi

case ${feats_type} in
    raw) _extract_opts="--extractor wave --fs ${fs}" ;;
    fbank) _extract_opts="--extractor fbank --config ${feats_config}" ;;
    ssl_states) _extract_opts="--extractor ssl_states --train_config ${train_config} --fs ${fs}"
                _extract_opts+=" --compress ${compress_states}" ;;
esac
# one marker per set list (train set + suffix): a run with other valid / test sets (e.g. the
# _pred sets of egs/pa_iemocap) dumps them; sets already dumped are skipped by dump_set
if run_stage 3 "${dump}/.done.${train_set}${suffix}"; then
    for dset in ${feats_superset} ${all_sets}; do
        # shellcheck disable=SC2086
        dump_set ${dump} "${dset}" ${_extract_opts}
    done
    if [ "${feats_type}" = fbank ]; then
        cmvn_stats ${dump} ${train_set}
    fi
    touch "${dump}/.done.${train_set}${suffix}"
fi

if run_stage 4 "${ser_exp}/.done"; then
    mkdir -p "${ser_exp}"
    log "Stage 4: training ${ser_exp} (log: ${ser_exp}/train.log)"
    _opts="" _ctc_weight=$(config_value "${train_config}" model_conf.ctc_weight 0)
    _fusion=$(config_value "${train_config}" personality_fusion "")
    for _s in train valid; do
        _set=${train_set}; [ ${_s} = train ] || _set=${valid_set}
        _opts+=" --${_s}_data_path_and_name_and_type ${dump}/${_set}/feats.scp,speech,kaldi_ark"
        _opts+=" --${_s}_data_path_and_name_and_type ${token_dir}/${_set}/emotion_id,emotion,text_int"
        if [ -n "${_fusion}" ]; then
            _opts+=" --${_s}_data_path_and_name_and_type data/${_set}/utt2personality,personality,text_float"
        fi
        _shape=${dump}/${_set}/feats_shape
        # the transcript only for the auxiliary CTC task, which leaves out utterances with no
        # target token (data/<set>/utt2empty_text) and pairs too short for CTC (logged)
        if positive "${_ctc_weight}"; then
            _opts+=" --${_s}_data_path_and_name_and_type ${token_dir}/${_set}/text,text,text"
            py_step ${ser_exp}/filter_${_s}.log filter_utts --feats_shape ${_shape} \
                --text_shape ${token_dir}/${_set}/text_shape --out_dir ${ser_exp}/shape/${_set} \
                --subsampling 1 --set_role ${_s}
            _shape=${ser_exp}/shape/${_set}/feats_shape
        fi
        _opts+=" --${_s}_shape_file ${_shape}"
    done
    if [ "${feats_type}" = fbank ]; then
        _opts+=" --input_size $(config_value "${feats_config}" n_mels)"
        _opts+=" --normalize global_mvn --normalize_conf stats_file=${dump}/${train_set}/feats_stats.npz"
    else
        _opts+=" --input_size 1"  # waveforms or hidden states: the SSL encoder reads them as they are
    fi
    # shellcheck disable=SC2086
    eval "$(train_launcher ${ser_exp})" ${py} -m espnet_ser.bin.ser_train --config "${train_config}" \
        --emotions ${emotions} --token_list "${token_dir}/tokens.txt" ${_opts} \
        --resume true --seed "${seed}" --ngpu "${ngpu}" --output_dir "${ser_exp}" ${ser_args} || fail "${ser_exp}/train.log"
    touch "${ser_exp}/.done"
fi

if run_stage 5 "${ser_exp}/decode_${decode_tag}/.done"; then
    average_checkpoints "${ser_exp}"
    _fusion=$(config_value "${ser_exp}/config.yaml" personality_fusion "")  # as trained
    for dset in ${test_sets}; do
        _opts=""
        [ -z "${_fusion}" ] || _opts="--personality data/${dset}/utt2personality"
        # shellcheck disable=SC2086
        decode_set "${ser_exp}" ser_inference infer "${ser_exp}/decode_${decode_tag}/${dset}" \
            --speech_scp "${dump}/${dset}/feats.scp" ${_opts}
    done
    touch "${ser_exp}/decode_${decode_tag}/.done"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    for dset in ${test_sets}; do
        _dir=${ser_exp}/decode_${decode_tag}/${dset}
        log "Stage 6: scoring ${_dir} (log: ${_dir}/score/score.log)"
        mkdir -p "${_dir}/score"
        _score_opts=""
        [ ! -f "${_dir}/text" ] || _score_opts="--ref_text ${token_dir}/${dset}/text --hyp_text ${_dir}/text"
        # shellcheck disable=SC2086
        py_step ${_dir}/score/score.log score_ser --ref_emotion data/${dset}/utt2emo \
            --hyp_emotion ${_dir}/emotion --emotions "${emotions}" --train_log ${ser_exp}/train.log \
            ${_score_opts} --outdir ${_dir}/score
    done
    if [ -n "${train_config}" ] && [ "$(config_value "${train_config}" encoder_conf.layer last)" = weighted ]; then
        log "Stage 6: SSL layer weights of ${inference_model} -> ${ser_exp}/layer_weights.{png,json}"
        py_step ${ser_exp}/layer_weights.txt ssl_layer_weights --model_file ${ser_exp}/${inference_model} \
            --png ${ser_exp}/layer_weights.png --json ${ser_exp}/layer_weights.json
    fi
    write_results
    for dset in ${test_sets}; do
        cat "${ser_exp}/decode_${decode_tag}/${dset}/score/result.txt"
    done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
