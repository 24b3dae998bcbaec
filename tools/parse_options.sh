# tools/parse_options.sh: Kaldi-style command-line options for bash scripts.
# shellcheck shell=bash
#
# Source it after the script has set its option variables:
#
#   # begin options
#   stage=1              # first stage to run
#   stop_stage=6         # last stage to run
#   use_gpu=false        # true or false
#   test_sets="dev test" # quoted defaults may contain spaces
#   # end options
#   help_message="Usage: $0 [options] <data-dir>"
#   . tools/parse_options.sh
#   # "$@" now holds the positional arguments.
#
# --foo-bar VALUE, --foo_bar VALUE and --foo-bar=VALUE set foo_bar, which must already be defined;
# a variable whose value is true/false only accepts true/false. --config FILE sources a file of
# name=value lines (known names only) before the other options, so the command line wins.
# --help / -h prints $help_message and the options declared between "# begin options" and
# "# end options" in the calling script. Parsing stops at the first non-option or after "--".
# A wrapper that sets pass_to=SCRIPT before sourcing gets the options it does not declare (and
# --config, and the arguments left) in the array pass_args, to hand to SCRIPT, which rejects
# the ones it does not know either; its --help is followed by SCRIPT --help.
# Safe under "set -euo pipefail". Helpers and variables used here start with __po_ and are removed.

__po_die() {
  echo "$0: $*" >&2
  exit 1
}

__po_check_bool() {  # name old new
  case $2 in true|false) ;; *) return 0 ;; esac
  case $3 in true|false) ;; *) __po_die "option --$1 expects true or false, got '$3'" ;; esac
}

__po_help() {
  if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message"; fi
  [ -r "$0" ] || return 0
  local line name rest default comment in_block=false width=0 i
  local -a flags=() comments=()
  local re_opt='^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$'
  local re_dq='^"([^"]*)"(.*)$' re_sq="^'([^']*)'(.*)\$"
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^[[:space:]]*#[[:space:]]*begin[[:space:]]+options ]]; then in_block=true; continue; fi
    if [[ $line =~ ^[[:space:]]*#[[:space:]]*end[[:space:]]+options ]]; then in_block=false; continue; fi
    $in_block || continue
    [[ $line =~ $re_opt ]] || continue
    name=${BASH_REMATCH[1]}
    rest=${BASH_REMATCH[2]}
    if [[ $rest =~ $re_dq ]] || [[ $rest =~ $re_sq ]]; then
      default=${BASH_REMATCH[1]}
      rest=${BASH_REMATCH[2]}
    else  # unquoted: everything before the first " #"
      default=${rest%%[[:space:]]#*}
      rest=${rest:${#default}}
      default=${default%"${default##*[![:space:]]}"}
    fi
    comment=""
    if [[ $rest =~ ^[[:space:]]*#[[:space:]]?(.*)$ ]]; then comment=${BASH_REMATCH[1]}; fi
    flags+=("--$name <$default>")
    comments+=("$comment")
    if [ ${#flags[-1]} -gt $width ]; then width=${#flags[-1]}; fi
  done < "$0"
  [ ${#flags[@]} -gt 0 ] || return 0
  echo "Options:"
  for ((i = 0; i < ${#flags[@]}; i++)); do
    if [ -n "${comments[i]}" ]; then
      printf '  %-*s   # %s\n' "$width" "${flags[i]}" "${comments[i]}"
    else
      printf '  %s\n' "${flags[i]}"
    fi
  done
}

__po_source_config() {  # file: check every line is name=value with a known name, then source it
  # Locals are prefixed: the sourced file assigns the caller's variables through this scope.
  local __po_file=$1 __po_line __po_n=0 __po_var
  local -a __po_bools=() __po_olds=()
  [ -f "$__po_file" ] || __po_die "config file '$__po_file' not found"
  while IFS= read -r __po_line || [ -n "$__po_line" ]; do
    __po_n=$((__po_n + 1))
    [[ $__po_line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    [[ $__po_line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)= ]] \
      || __po_die "$__po_file:$__po_n: expected name=value, got: $__po_line"
    __po_var=${BASH_REMATCH[1]}
    [[ -v $__po_var && $__po_var != __po_* ]] \
      || __po_die "$__po_file:$__po_n: unknown option '$__po_var'"
    __po_bools+=("$__po_var")
    __po_olds+=("${!__po_var}")
  done < "$__po_file"
  # shellcheck disable=SC1090
  . "$__po_file"
  for ((__po_n = 0; __po_n < ${#__po_bools[@]}; __po_n++)); do
    __po_var=${__po_bools[__po_n]}
    __po_check_bool "$__po_var" "${__po_olds[__po_n]}" "${!__po_var}"
  done
}

__po_names=()
__po_values=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -h|--help) __po_help; [ -z "${pass_to:-}" ] || { echo; exec "$pass_to" --help; }; exit 0 ;;
    --?*=*) __po_flag=${1%%=*}; __po_value=${1#*=}; shift ;;
    --?*)
      [ $# -ge 2 ] || __po_die "option $1 needs a value (see $0 --help)"
      __po_flag=$1; __po_value=$2; shift 2 ;;
    *) break ;;
  esac
  __po_name=${__po_flag#--}
  __po_name=${__po_name//-/_}
  if [ -n "${pass_to:-}" ] && { [ "$__po_name" = config ] || ! [[ -v $__po_name ]]; }; then
    pass_args+=("$__po_flag" "$__po_value")
    continue
  fi
  if [ "$__po_name" = config ]; then
    __po_source_config "$__po_value"  # config files first: later command-line options override
    continue
  fi
  if ! [[ $__po_name =~ ^[A-Za-z][A-Za-z0-9_]*$ && -v $__po_name ]]; then
    __po_die "unknown option --${__po_name//_/-} (see $0 --help)"
  fi
  __po_names+=("$__po_name")
  __po_values+=("$__po_value")
done

for ((__po_i = 0; __po_i < ${#__po_names[@]}; __po_i++)); do
  __po_name=${__po_names[__po_i]}
  __po_check_bool "$__po_name" "${!__po_name}" "${__po_values[__po_i]}"
  printf -v "$__po_name" '%s' "${__po_values[__po_i]}"
done

if [ -n "${pass_to:-}" ]; then pass_args+=("$@"); set --; fi

unset -v __po_names __po_values __po_flag __po_name __po_value __po_i
unset -f __po_die __po_check_bool __po_help __po_source_config
