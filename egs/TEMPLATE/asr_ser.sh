#!/usr/bin/env bash
# Joint speech + emotion recognition recipe: the staged pipeline every egs/*/run.sh calls.
#
# Stages (numbers never change; new stages go at the end):
#   1. data preparation (local/data.sh) and validation of data/<set>/
#   2. transcripts with the emotion token + token inventory     -> data/token_<tag>/
#   3. 80-dim log-mel fbank dumps (nj jobs) + global CMVN        -> dump/fbank/<set>/
#      (+ the GST reference encoder's log-mel for style_encoder: gst -> dump/gst_fbank/<set>/,
#      dump/gst_fbank_<name>/<set>/ for --gst_feats_config <...>/fbank_gst_<name>.yaml)
#   4. training with ESPnet's trainer (ASRSERTask)               -> exp/<asr_exp>/
#   5. checkpoint averaging + joint CTC/attention beam search    -> exp/<asr_exp>/decode_<tag>/<set>/
#      of the validation set (--decode_valid true) and the test sets
#   6. scoring (WER per emotion, WA/UA, confusion) of the decoded sets + RESULTS.md
# Inputs: local/data.sh writing data/{train_set,valid_set,test_sets} (Kaldi data dirs with
# wav.scp text utt2spk spk2utt utt2emo), path.sh (environment), cmd.sh (job runners).
# Cross-validation recipes call this once per fold with --train_set foldK_train ...
# --suffix _foldK --feats_superset <set holding every utterance>.
# A finished stage leaves a .done marker; re-running it is skipped unless --force true.
set -euo pipefail

SECONDS=0

# begin options
stage=1                    # first stage to run
stop_stage=6               # last stage to run
force=false                # rerun stages that already have a .done marker
nj=4                       # parallel jobs for feature extraction
decode_nj=4                # parallel jobs for decoding
ngpu=0                     # GPUs for training (0: CPU)
num_nodes=1                # nodes for multi-node training (ESPnet's launcher)
seed=0                     # random seed for training
train_set=train            # training set name under data/
valid_set=valid            # validation set name under data/
test_sets="test"           # sets to decode and score
decode_valid=true          # also decode and score valid_set (with the model the test sets get)
emotions="ang hap neu sad" # emotion codes (tokens <ang> ...)
emo_token_position=end     # where the emotion token goes: end, front or none
token_type=bpe             # bpe, char or word
nbpe=150                   # sentencepiece vocabulary size
bpemode=unigram            # sentencepiece model type: unigram or bpe
feats_config=              # filterbank config (default: <root>/conf/fbank.yaml)
gst_feats_config=          # GST log-mel config (default: <root>/conf/fbank_gst.yaml)
feats_superset=            # dumped set the other sets are subsets of (extract once, e.g. for folds)
suffix=                    # appended to the token dir and experiment names (e.g. _fold1)
exp_tag=                   # appended to the config name in the default experiment name
pretrained_dir=            # output of espnet_ser.bin.extend_pretrained: its tokenizer, features,
                           # normalisation and parameters initialise the model
train_config=              # training YAML (required for stage 4)
decode_config=             # decoding YAML (stage 5)
asr_exp=                   # experiment dir (default: exp/asr_<config name>_<token tag>)
asr_args=                  # extra options for training, e.g. "--max_epoch 1"
inference_args=            # extra options for decoding
nbest_avg=10               # number of checkpoints to average
avg_metric=valid.acc       # validation metric to pick the checkpoints by
inference_model=           # model file to decode with (default: the averaged one)
decode_threads=1           # torch threads per decoding job
inference_ngpu=0           # decode on a GPU (1) or the CPU (0)
prosody_baseline=false     # also run the prosody-only logistic-regression baseline
results_notes=             # text file whose content heads RESULTS.md
allow_commands=false       # run wav.scp entries that are commands ("... |"); refused otherwise
audio_on_error=fail        # unreadable / truncated / empty audio: fail, or reject (listed in dump/*/<set>/reject_list)
resample=false             # resample audio at another rate than the filterbank's (else an error)
min_frames=10              # training / validation utterances shorter than this are left out (logged)
max_frames=3000            # ... and longer than this (3000 frames of 16 ms = 48 s); never the test sets
# end options

help_message="Usage: $0 --train_config <yaml> [options]
Runs the joint ASR + SER recipe; see the option list below."

. ./path.sh
. ./cmd.sh
. "${ESPNET_SER_ROOT}/tools/parse_options.sh"
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -eq 0 ] || { log "unexpected argument(s): $*"; echo "${help_message}"; exit 2; }
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ -z "${train_config}" ]; then
    log "--train_config is required for stage 4"; echo "${help_message}"; exit 2
fi
case ${emo_token_position} in end|front|none) ;; *) log "--emo_token_position: end, front or none"; exit 2 ;; esac

if [ -n "${pretrained_dir}" ]; then
    for f in config.yaml model.pth tokens.txt bpe.model feats_config.yaml feats_stats.npz info.json; do
        [ -f "${pretrained_dir}/${f}" ] || { log "--pretrained_dir: no ${pretrained_dir}/${f} (run espnet_ser.bin.extend_pretrained)"; exit 2; }
    done
    [ -z "${feats_config}" ] || log "--pretrained_dir: its feats_config.yaml replaces --feats_config ${feats_config}"
    [ "$(config_value "${pretrained_dir}/info.json" dumped_feats)" = true ] \
        || { log "--pretrained_dir: ${pretrained_dir} reads raw waves; make it with extend_pretrained --dumped_feats true"; exit 2; }
    feats_config=${pretrained_dir}/feats_config.yaml token_type=bpe
    token_tag=pretrained_emo${emo_token_position}
else
    # the rule of espnet_ser.text.emotion_text.token_tag: bpe150_emoend, char_emofront, ...
    token_tag=${token_type}$([ "${token_type}" != bpe ] || echo "${nbpe}")_emo${emo_token_position}
fi
[ -n "${feats_config}" ] || feats_config=${ESPNET_SER_ROOT}/conf/fbank.yaml
[ -n "${gst_feats_config}" ] || gst_feats_config=${ESPNET_SER_ROOT}/conf/fbank_gst.yaml
token_dir=data/token_${token_tag}${suffix}
dump=dump/fbank  # the features of a pretrained model's own filterbank go apart
[ -z "${pretrained_dir}" ] || dump=dump/fbank_$(basename "${pretrained_dir}")
# the GST log-mel: dump/gst_fbank for fbank_gst.yaml, dump/gst_fbank_<name> for another
# config (fbank_gst_<name>.yaml or <name>.yaml), so each GST feature config has its own dump
_gst_name=$(basename "${gst_feats_config}" .yaml); _gst_name=${_gst_name#fbank_gst}
gst_dump=dump/gst_fbank${_gst_name:+_${_gst_name#_}}
if [ -z "${asr_exp}" ]; then
    asr_exp=exp/asr_$(basename "${train_config:-model}" .yaml)${exp_tag}_${token_tag}${suffix}
fi
# The style source of the model (none, gst or oracle; see espnet_ser.asr.style).
style=none
[ -z "${train_config}" ] || style=$(config_value "${train_config}" style_encoder none)
decode_tag=$(basename "${decode_config:-decode_default}" .yaml)
[ -n "${inference_model}" ] || inference_model=${avg_metric}.ave_${nbest_avg}best.pth
all_sets="${train_set} ${valid_set} ${test_sets}"
decode_sets=
${decode_valid} && decode_sets=${valid_set}
for _s in ${test_sets}; do [ "${_s}" = "${valid_set}" ] && ${decode_valid} || decode_sets+=" ${_s}"; done

mkdir -p exp/log
if run_stage 1 data/.stage1.done; then stage1_data; fi
if run_stage 2 "${token_dir}/.done"; then
    # shellcheck disable=SC2046
    stage2_text "emotion-token text, ${token_tag}" --emo_token_position "${emo_token_position}" \
        --token_type "${token_type}" --nbpe "${nbpe}" --bpemode "${bpemode}" \
        $([ -z "${pretrained_dir}" ] || echo "--bpemodel ${pretrained_dir}/bpe.model --token_list ${pretrained_dir}/tokens.txt")
fi

# one marker per dump: the filterbank (+ CMVN of train_set) and, for GST models, the GST log-mel
_markers="${dump}/.done.${train_set}"
[ "${style}" != gst ] || _markers+=" ${gst_dump}/.done.${train_set}"
# shellcheck disable=SC2086
if run_stage 3 ${_markers}; then
    for dset in ${feats_superset} ${all_sets}; do
        dump_set ${dump} ${dset} --config "${feats_config}"
        [ "${style}" != gst ] || dump_set ${gst_dump} ${dset} --config "${gst_feats_config}"
    done
    if [ ! -f "${dump}/.done.${train_set}" ] || ${force}; then
        cmvn_stats ${dump} ${train_set}
        cp "${feats_config}" ${dump}/feats_config.yaml
        touch "${dump}/.done.${train_set}"
    fi
    if [ "${style}" = gst ]; then
        cp "${gst_feats_config}" ${gst_dump}/feats_config.yaml
        touch "${gst_dump}/.done.${train_set}"
    fi
fi
if [ "${style}" = gst ] && [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ ! -f ${gst_dump}/${train_set}/.done ]; then
    log "style_encoder: gst needs ${gst_dump}/${train_set}: run stage 3 (--stage 3)"; exit 1
fi

if run_stage 4 "${asr_exp}/.done"; then
    mkdir -p "${asr_exp}"
    log "Stage 4: training ${asr_exp} (log: ${asr_exp}/train.log)"
    py_step "${asr_exp}/validate.log" validate_data_dir --emotions "${emotions}" \
        --allow_commands "${allow_commands}" ${dump}/${train_set} ${dump}/${valid_set}
    cp ${dump}/feats_config.yaml "${asr_exp}/feats_config.yaml"
    [ "${style}" != gst ] || cp "${gst_feats_config}" "${asr_exp}/gst_feats_config.yaml"
    [ -z "${decode_config}" ] || cp "${decode_config}" "${asr_exp}/decode.yaml"
    _config=${train_config} _stats=${dump}/${train_set}/feats_stats.npz
    if [ -n "${pretrained_dir}" ]; then  # the pretrained model's architecture, normalisation and parameters
        _stats=${pretrained_dir}/feats_stats.npz _config=${asr_exp}/train_config.yaml
        log "Stage 4: ${train_config} on the architecture of ${pretrained_dir} -> ${_config} (log: ${asr_exp}/pretrained_config.log)"
        py_step "${asr_exp}/pretrained_config.log" pretrained_train_config --pretrained_dir "${pretrained_dir}" \
            --train_config "${train_config}" --output "${_config}"
    fi
    _opts="--input_size $(config_value "${feats_config}" n_mels) --normalize_conf stats_file=${_stats}"
    [ "${token_type}" != bpe ] || _opts+=" --bpemodel ${token_dir}/bpe.model"
    [ ! -f "${token_dir}/nlsyms.txt" ] || _opts+=" --non_linguistic_symbols ${token_dir}/nlsyms.txt"
    for _s in train valid; do
        _set=${train_set} _role=train
        [ ${_s} = train ] || _set=${valid_set}
        [ "${_set}" = "${train_set}" ] || _role=valid
        # too short / too long / too short for CTC: left out of training and validation (logged)
        py_step ${asr_exp}/filter_${_role}.log filter_utts --feats_shape ${dump}/${_set}/feats_shape \
            --text_shape ${token_dir}/${_set}/text_shape --out_dir ${asr_exp}/shape/${_set} \
            --min_frames ${min_frames} --max_frames ${max_frames} --subsampling 4 --set_role ${_role}
        case ${style} in
            gst) _opts+=" --${_s}_data_path_and_name_and_type ${gst_dump}/${_set}/feats.scp,style_speech,kaldi_ark" ;;
            oracle) _opts+=" --${_s}_data_path_and_name_and_type ${token_dir}/${_set}/emotion_id,emotion,text_int" ;;
        esac
        _opts+=" --${_s}_data_path_and_name_and_type ${dump}/${_set}/feats.scp,speech,kaldi_ark"
        _opts+=" --${_s}_data_path_and_name_and_type ${token_dir}/${_set}/text,text,text"
        _opts+=" --${_s}_shape_file ${asr_exp}/shape/${_set}/feats_shape"
        _opts+=" --${_s}_shape_file ${asr_exp}/shape/${_set}/text_shape"
    done
    # shellcheck disable=SC2086
    eval "$(train_launcher ${asr_exp})" ${py} -m espnet_ser.bin.asr_ser_train --config "${_config}" \
        --use_preprocessor true --token_type "${token_type}" --token_list "${token_dir}/tokens.txt" \
        --normalize global_mvn ${_opts} --resume true --seed "${seed}" --ngpu "${ngpu}" \
        --output_dir "${asr_exp}" ${asr_args} || fail "${asr_exp}/train.log"
    touch "${asr_exp}/.done"
fi

# one marker per decoded set (decode_<tag>/<set>/.done)
_markers=$(for dset in ${decode_sets}; do echo "${asr_exp}/decode_${decode_tag}/${dset}/.done"; done)
# shellcheck disable=SC2086
if run_stage 5 ${_markers}; then
    average_checkpoints "${asr_exp}"
    for dset in ${decode_sets}; do
        _dir=${asr_exp}/decode_${decode_tag}/${dset}
        [ ! -f "${_dir}/.done" ] || ${force} || continue
        _dec_opts=""
        [ -z "${decode_config}" ] || _dec_opts+=" --decode_config ${decode_config}"
        case ${style} in
            gst) _dec_opts+=" --style_scp ${gst_dump}/${dset}/feats.scp" ;;
            oracle) _dec_opts+=" --emotion_ids ${token_dir}/${dset}/emotion_id" ;;
        esac
        # shellcheck disable=SC2086
        decode_set "${asr_exp}" asr_ser_inference decode "${_dir}" --feats_scp ${dump}/${dset}/feats.scp ${_dec_opts}
        touch "${_dir}/.done"
    done
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    for dset in ${decode_sets}; do
        _dir=${asr_exp}/decode_${decode_tag}/${dset}
        log "Stage 6: scoring ${_dir} (log: ${_dir}/score/score.log)"
        mkdir -p "${_dir}/score"
        py_step ${_dir}/score/score.log score --ref ${token_dir}/${dset}/text --hyp ${_dir}/text \
            --outdir ${_dir}/score --emotions "${emotions}"
        if [ -f data/${dset}/unseen_sentences ]; then  # sentences never seen in training
            _sub=${asr_exp}/decode_${decode_tag}/${dset}_unseen/score
            log "Stage 6: scoring the unseen-sentence subset of ${dset} (log: ${_sub}/score.log)"
            mkdir -p "${_sub}"
            py_step ${_sub}/score.log score --ref ${token_dir}/${dset}/text --hyp ${_dir}/text \
                --utt_subset data/${dset}/unseen_sentences --outdir ${_sub} --emotions "${emotions}"
        fi
        if ${prosody_baseline} && [[ " ${test_sets} " == *" ${dset} "* ]]; then
            log "Stage 6: prosody-only baseline on ${dset} (log: exp/prosody_baseline/${dset}/baseline.log)"
            mkdir -p exp/prosody_baseline/${dset}
            py_step exp/prosody_baseline/${dset}/baseline.log prosody_baseline --train_dir data/${train_set} \
                --test_dir data/${dset} --outdir exp/prosody_baseline/${dset}
        fi
    done
    write_results
    for dset in ${decode_sets}; do  # the tables, without the per-utterance alignments
        sed '/^Per-utterance alignment/,$d' "${asr_exp}/decode_${decode_tag}/${dset}/score/result.txt"
    done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
