#!/bin/bash
# The C++ style (.clang-format): lists the files that differ from it and exits 1, or with
# --fix rewrites them. ctest runs the check (Style.ClangFormat).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1
format=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$format" ]; then echo "format.sh: clang-format is not installed (scripts/install-deps.sh installs it)" >&2; exit 2; fi
differ=0
while IFS= read -r f; do
  if [ $fix = 1 ]; then
    "$format" -i "$f"
  elif ! "$format" "$f" | cmp -s - "$f"; then
    echo "$f: not formatted (scripts/format.sh --fix)"
    differ=1
  fi
done < <(git ls-files '*.cc' '*.h' ':!tests/fixtures')
exit $differ
