#!/usr/bin/env bash
# The Python package's static checks (python/pyproject.toml configures both): mypy --strict over
# python/lockstep, tests/python/package and examples/, then ruff check over the same. Exits 1 on any finding; with
# no .venv (scripts/python-env.sh makes it, mypy and ruff included) it says so and exits 77, the
# code ctest reads as skipped (PythonPackage.Lint). Caches go to .cache/ (ignored by git).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "skipped: no .venv (scripts/python-env.sh makes it)"
  exit 77
fi
for tool in mypy ruff; do
  if [ ! -x ".venv/bin/$tool" ]; then
    echo "lint-python: .venv/bin/$tool is missing: run scripts/python-env.sh (python/requirements.lock pins it)" >&2
    exit 1
  fi
done
status=0
echo "lint-python: mypy (strict)"
.venv/bin/mypy --config-file python/pyproject.toml --cache-dir .cache/mypy || status=1
# Each example is its own script (two are called train.py): one mypy run each, strict but for
# calls into torch and transformers functions their authors left unannotated (loss.backward()).
for example in examples/*/*.py; do
  .venv/bin/mypy --config-file python/pyproject.toml --cache-dir .cache/mypy --allow-untyped-calls "$example" || status=1
done
echo "lint-python: ruff check"
RUFF_CACHE_DIR=.cache/ruff .venv/bin/ruff check --config python/pyproject.toml python/lockstep tests/python/package examples || status=1
exit $status
