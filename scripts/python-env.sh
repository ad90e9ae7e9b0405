#!/usr/bin/env bash
# Makes the project's Python environment, .venv/ at the checkout's root: every package of
# python/requirements.lock (PyTorch 2.x from PyPI, the Hugging Face Trainer, pytest), then the
# lockstep package from python/ (editable). The wheels are downloaded once into
# $LOCKSTEP_WHEELHOUSE (default ~/.cache/lockstep/wheels) and installed from there, so a second
# run downloads nothing; an environment already made from the same lock file is left as it is.
# Set LOCKSTEP_NO_VENV=1 to skip it (a machine without PyPI: the Python tests then say so).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=python/requirements.lock
stamp=.venv/.lockstep-lock.sha256
if [ "${LOCKSTEP_NO_VENV:-0}" = 1 ]; then
  echo "python-env: skipped (LOCKSTEP_NO_VENV=1)"
  exit 0
fi
want=$(sha256sum "$lock" python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "python-env: .venv is up to date with $lock"
  exit 0
fi
wheels=${LOCKSTEP_WHEELHOUSE:-$HOME/.cache/lockstep/wheels}
mkdir -p "$wheels"
start=$(date +%s)
python=$(command -v python3)
echo "python-env: downloading what $wheels lacks of $lock"
"$python" -m pip download --quiet --disable-pip-version-check -r "$lock" -d "$wheels"
# A package PyPI has only as source (deepspeed) is built into a wheel once, beside the others.
for sdist in "$wheels"/*.tar.gz; do
  [ -e "$sdist" ] || continue
  name=$(basename "$sdist" .tar.gz)
  ls "$wheels/${name}"-*.whl >/dev/null 2>&1 ||
    "$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-index --find-links "$wheels" \
      -w "$wheels" "$sdist"
done
rm -rf .venv
"$python" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --no-index --find-links "$wheels" -r "$lock"
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ./python
echo "$want" > "$stamp"
echo "python-env: .venv made in $(( $(date +%s) - start )) s"
