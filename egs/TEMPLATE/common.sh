# shellcheck shell=bash disable=SC2154  # the globals are the sourcing pipeline's options
# Shell helpers shared by the staged pipelines (asr_ser.sh, ser.sh); sourced after the options.
# They read the pipeline's own variables: stage, stop_stage, force, nj, decode_nj, emotions,
# allow_commands, audio_on_error, resample, feats_superset, all_sets, ngpu, num_nodes,
# inference_ngpu, decode_threads, inference_args, results_notes and the job runners.
py=python3

log() {  # a line with time, file, line and function of the caller
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }  # true if the number $1 is > 0

# run_stage N MARKER...: true if stage N is selected and one of its markers is missing
# (a stage writing several outputs has one marker each), or with --force true.
run_stage() {
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] || return 1
    local n=$1 m; shift
    ${force} && return 0
    for m in "$@"; do [ -f "${m}" ] || return 0; done
    log "Stage ${n}: already done ($* exists); --force true to redo"; return 1
}
# fail LOG: used as "command || fail LOG"; names the log of the failed step.
fail() { log "failed; see $1"; exit 1; }
# py_step LOG MODULE [ARG...]: espnet_ser.bin.MODULE ARG..., its output in LOG; fails naming LOG.
py_step() {
    local _log=$1 _mod=$2; shift 2
    ${py} -m "espnet_ser.bin.${_mod}" "$@" > "${_log}" 2>&1 || fail "${_log}"
}
# config_value CONFIG KEY [DEFAULT]: a value of a YAML config (KEY a.b: nested), see config_query.
config_value() {
    ${py} -m espnet_ser.bin.config_query --config "$1" --key "$2" ${3+--default "$3"}
}

# stage1_data: local/data.sh, then validation of every set the pipeline uses.
stage1_data() {
    log "Stage 1: data preparation -> data/ (log: exp/log/data.log)"
    local/data.sh > exp/log/data.log 2>&1 || fail exp/log/data.log
    # shellcheck disable=SC2046
    ${py} -m espnet_ser.bin.validate_data_dir --emotions "${emotions}" --allow_commands ${allow_commands} \
        $(for s in ${all_sets}; do echo data/${s}; done) >> exp/log/data.log 2>&1 || fail exp/log/data.log
    touch data/.stage1.done
}

# stage2_text WHAT [OPTION...]: prepare_text of every set into token_dir, trained on train_set.
stage2_text() {
    log "Stage 2: $1 -> ${token_dir} (log: ${token_dir}/prepare_text.log)"; shift
    mkdir -p "${token_dir}"
    # shellcheck disable=SC2046
    py_step "${token_dir}/prepare_text.log" prepare_text --train_set "${train_set}" \
        --data_dirs $(for s in ${all_sets}; do echo data/${s}; done) --out_dir "${token_dir}" \
        --emotions "${emotions}" "$@"
    touch "${token_dir}/.done"
}

# dump_set DUMP SET [OPTION...]: extract_feats of data/SET into DUMP/SET in up to nj jobs with
# the extractor's OPTIONs, or the subset of DUMP/<feats_superset>; skipped once DUMP/SET/.done.
dump_set() {
    local _dump=$1 dset=$2 _nj _logdir=$1/$2/log; shift 2
    local _audio="--allow_commands ${allow_commands} --on_error ${audio_on_error} --resample ${resample}"
    [ ! -f "${_dump}/${dset}/.done" ] || ${force} || return 0
    mkdir -p "${_logdir}"
    py_step "${_logdir}/validate.log" validate_data_dir --emotions "${emotions}" \
        --allow_commands "${allow_commands}" "data/${dset}"
    if [ -n "${feats_superset}" ] && [ "${dset}" != "${feats_superset}" ]; then
        log "Stage 3: ${_dump}/${dset} from ${_dump}/${feats_superset} (log: ${_logdir}/subset.log)"
        # shellcheck disable=SC2086
        py_step "${_logdir}/subset.log" extract_feats --subset_of "${_dump}/${feats_superset}" \
            --data_dir "data/${dset}" ${_audio} --out_dir "${_dump}/${dset}"
    else
        _nj=$(min "${nj}" "$(wc -l < "data/${dset}/wav.scp")")
        log "Stage 3: ${_dump##*/} for ${dset} in ${_nj} jobs (logs: ${_logdir}/extract.*.log)"
        # shellcheck disable=SC2086
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}"/extract.JOB.log \
            ${py} -m espnet_ser.bin.extract_feats "$@" --data_dir "data/${dset}" \
            --out_dir "${_dump}/${dset}" ${_audio} --nj "${_nj}" --job JOB || fail "${_logdir}/extract.*.log"
        # shellcheck disable=SC2086
        py_step "${_logdir}/merge.log" extract_feats --merge --data_dir "data/${dset}" \
            --out_dir "${_dump}/${dset}" ${_audio} --nj "${_nj}"
    fi
    touch "${_dump}/${dset}/.done"
}

# cmvn_stats DUMP SET: global CMVN statistics of DUMP/SET -> DUMP/SET/feats_stats.npz
cmvn_stats() {
    log "Stage 3: global CMVN statistics from $2"
    py_step "$1/$2/log/cmvn.log" compute_cmvn --feats_scp "$1/$2/feats.scp" --out "$1/$2/feats_stats.npz"
}

# average_checkpoints EXP: the nbest_avg best checkpoints of EXP by avg_metric, averaged.
average_checkpoints() {
    log "Stage 5: averaging the ${nbest_avg} best checkpoints by ${avg_metric} (log: $1/average.log)"
    py_step "$1/average.log" average_checkpoints --exp_dir "$1" --metric "${avg_metric}" --nbest "${nbest_avg}"
}

# decode_set EXP MODULE NAME DIR SCP_OPTION SCP [OPTION...]: espnet_ser.bin.MODULE with
# EXP/<inference_model> over SCP (passed as SCP_OPTION) in up to decode_nj jobs
# (logs DIR/log/NAME.JOB.log), then the merge of the jobs' outputs into DIR.
decode_set() {
    local _exp=$1 _mod=$2 _name=$3 _dir=$4 _nj _opts
    _nj=$(min "${decode_nj}" "$(wc -l < "$6")")
    log "Stage 5: ${_name} ${_dir##*/} in ${_nj} jobs (logs: ${_dir}/log/${_name}.*.log)"
    _opts="--exp_dir ${_exp} --model_file ${_exp}/${inference_model} $5 $6 --output_dir ${_dir} --nj ${_nj}"
    shift 6
    if [ "${inference_ngpu}" -gt 0 ]; then _opts+=" --device cuda"; fi
    # shellcheck disable=SC2086
    ${decode_cmd} --gpu "${inference_ngpu}" --num-threads "${decode_threads}" JOB=1:"${_nj}" \
        "${_dir}/log/${_name}.JOB.log" ${py} -m "espnet_ser.bin.${_mod}" ${_opts} "$@" --job JOB \
        --num_threads "${decode_threads}" ${inference_args} || fail "${_dir}/log/${_name}.*.log"
    # shellcheck disable=SC2086
    py_step "${_dir}/log/merge.log" "${_mod}" ${_opts} "$@" --merge
}

# write_results: RESULTS.md of the recipe (headed by results_notes, if given).
write_results() {
    log "Stage 6: writing RESULTS.md"
    py_step exp/log/results.log make_results --recipe_dir . --out RESULTS.md \
        ${results_notes:+--notes "${results_notes}"}
}

# train_launcher EXP: the command prefix that runs training (one node: cuda_cmd; several:
# ESPnet's launcher), logging to EXP/train.log. Used as: eval $(train_launcher EXP) cmd ...
train_launcher() {
    if [ "${num_nodes}" -gt 1 ]; then
        echo "${py} -m espnet2.bin.launch --cmd '${cuda_cmd} --name $1' --log $1/train.log" \
             "--ngpu ${ngpu} --num_nodes ${num_nodes} --init_file_prefix $1/.dist_init_" \
             "--multiprocessing_distributed true --"
    else
        echo "${cuda_cmd} --gpu ${ngpu} $1/train.log"
    fi
}
