#!/usr/bin/env bash
# Compile-fail tests: every tests/compile_fail/*.cpp is a small program that
# must NOT compile, and whose diagnostics must say what is wrong.
#
#   usage: run.sh <project root> <compiler command...>
#          e.g. run.sh . g++        run.sh . ccache clang++
#
# Expectations, in each case file:
#
#   line 1:  // expect: STRING | STRING | ...
#            every STRING must occur in the compiler's output (stdout and
#            stderr together), on every compiler. Strings are fixed text (not
#            patterns), trimmed of surrounding blanks, separated by " | ".
#   any line // expect-gcc: STRING | ...     only checked when the compiler is g++
#   any line // expect-clang: STRING | ...   only checked when the compiler is clang++
#
# A case fails if it compiles, or if any expected string is missing; the
# report shows the case, the expected strings and the first 30 lines of the
# compiler's output. Cases are compiled with -fsyntax-only, two at a time
# (CTNN_JOBS overrides). CTNN_CASES=regex runs only the cases whose file name
# matches. Diagnostics are taken in the C locale so that g++ quotes with '.
set -u

if [[ "${1:-}" == "--case" ]]; then
  # Internal: run.sh --case <root> <out dir> <compiler...> <case file>
  root=$2 out=$3
  shift 3
  file=${*: -1}
  cxx=("${@:1:$#-1}")
  name=$(basename "$file" .cpp)
  family=gcc
  if "${cxx[@]}" --version 2>/dev/null | grep -qi clang; then family=clang; fi

  expected=()
  collect() {  # collect "// prefix: a | b" -> expected+=(a b)
    local rest=$1 item
    while [[ -n "$rest" ]]; do
      if [[ "$rest" == *" | "* ]]; then item=${rest%% | *}; rest=${rest#* | }; else item=$rest; rest=; fi
      item="${item#"${item%%[![:space:]]*}"}"
      item="${item%"${item##*[![:space:]]}"}"
      [[ -n "$item" ]] && expected+=("$item")
    done
  }
  first=$(head -n 1 "$file")
  if [[ "$first" != "// expect:"* ]]; then
    { echo "FAIL $name: line 1 must be '// expect: STRING | ...'"; } >"$out/$name.fail"
    exit 0
  fi
  collect "${first#// expect:}"
  while IFS= read -r line; do
    collect "${line#"// expect-$family:"}"
  done < <(grep "^// expect-$family:" "$file")

  log=$out/$name.log
  LC_ALL=C "${cxx[@]}" -std=c++20 -fsyntax-only -I"$root/include" "$file" >"$log" 2>&1
  rc=$?
  problems=()
  if [[ $rc -eq 0 ]]; then
    problems+=("it compiled, but it must not")
  else
    for s in "${expected[@]}"; do
      grep -qF -- "$s" "$log" || problems+=("missing: $s")
    done
  fi
  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "ok   $name ($(wc -l <"$log") lines of diagnostics)"
    exit 0
  fi
  {
    echo "FAIL $name ($family: ${cxx[*]})"
    echo "  file: $file"
    for s in "${expected[@]}"; do echo "  expects: $s"; done
    for p in "${problems[@]}"; do echo "  -> $p"; done
    if [[ -s "$log" ]]; then
      echo "  first 30 lines of the compiler output:"
      head -n 30 "$log" | sed 's/^/  | /'
    else
      echo "  (the compiler printed nothing)"
    fi
    echo
  } >"$out/$name.fail"
  echo "FAIL $name"
  exit 0
fi

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <project root> <compiler command...>" >&2
  exit 2
fi
root=$(cd "$1" && pwd)
shift
cases_dir=$root/tests/compile_fail
out=$(mktemp -d "${TMPDIR:-/tmp}/ctnn-compile-fail.XXXXXX")
trap 'rm -rf "$out"' EXIT

shopt -s nullglob
cases=()
for f in "$cases_dir"/*.cpp; do
  [[ "$(basename "$f")" =~ ${CTNN_CASES:-.} ]] && cases+=("$f")
done
if [[ ${#cases[@]} -eq 0 ]]; then
  echo "no compile-fail cases found in $cases_dir" >&2
  exit 1
fi
echo "compile_fail: ${#cases[@]} cases with: $*"

printf '%s\0' "${cases[@]}" |
  xargs -0 -n 1 -P "${CTNN_JOBS:-2}" bash "${BASH_SOURCE[0]}" --case "$root" "$out" "$@"

fails=("$out"/*.fail)
if [[ ${#fails[@]} -gt 0 ]]; then
  echo
  cat "${fails[@]}"
  echo "compile_fail: ${#fails[@]} of ${#cases[@]} cases failed"
  exit 1
fi
echo "compile_fail: all ${#cases[@]} cases rejected with the expected diagnostics"
