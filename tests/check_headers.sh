#!/usr/bin/env bash
# Every header under include/ctnn compiles on its own (detail/ headers
# included): a translation unit that includes only that header must pass
# -fsyntax-only with warnings as errors. Only include/ctnn/cuda* is skipped,
# since those headers need nvcc.
#
#   usage: check_headers.sh <project root> <compiler command...>
#
# Runs two compilers at a time (CTNN_JOBS overrides). On failure, lists each
# header that does not compile alone, with its first errors.
set -u

flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror)

if [[ "${1:-}" == "--one" ]]; then
  # Internal: check_headers.sh --one <root> <out dir> <compiler...> <header>
  root=$2 out=$3
  shift 3
  header=${*: -1}
  cxx=("${@:1:$#-1}")
  rel=${header#"$root/include/"}
  key=${rel//\//__}
  tu=$out/$key.cpp
  printf '#include "%s"\n' "$rel" >"$tu"
  if LC_ALL=C "${cxx[@]}" "${flags[@]}" -I"$root/include" "$tu" >"$out/$key.log" 2>&1; then
    rm -f "$out/$key.log"
  else
    {
      echo "FAIL $rel (first errors):"
      if grep -q -E '(error|warning):' "$out/$key.log"; then
        grep -m 10 -E '(error|warning):' "$out/$key.log" | sed 's/^/  | /'
      else
        head -n 15 "$out/$key.log" | sed 's/^/  | /'
      fi
      echo
    } >"$out/$key.fail"
    echo "FAIL $rel"
  fi
  exit 0
fi

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <project root> <compiler command...>" >&2
  exit 2
fi
root=$(cd "$1" && pwd)
shift
out=$(mktemp -d "${TMPDIR:-/tmp}/ctnn-headers.XXXXXX")
trap 'rm -rf "$out"' EXIT

mapfile -t headers < <(find "$root/include/ctnn/" -name '*.hpp' -not -path "$root/include/ctnn/cuda*" | sort)
if [[ ${#headers[@]} -eq 0 ]]; then
  echo "no headers found under $root/include/ctnn" >&2
  exit 1
fi
echo "headers_standalone: ${#headers[@]} headers with: $* ${flags[*]}"

printf '%s\0' "${headers[@]}" |
  xargs -0 -n 1 -P "${CTNN_JOBS:-2}" bash "${BASH_SOURCE[0]}" --one "$root" "$out" "$@"

shopt -s nullglob
fails=("$out"/*.fail)
if [[ ${#fails[@]} -gt 0 ]]; then
  echo
  cat "${fails[@]}"
  echo "headers_standalone: ${#fails[@]} of ${#headers[@]} headers do not compile on their own:"
  for f in "${fails[@]}"; do head -n 1 "$f" | sed -e 's/^FAIL /  /' -e 's/ (first errors):$//'; done
  exit 1
fi
echo "headers_standalone: all ${#headers[@]} headers compile on their own"
