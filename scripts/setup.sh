#!/usr/bin/env bash
# Set up (or bring up to date) the environment in .venv: pinned packages, the helpers package, paired notebooks.
# Idempotent: packages are reinstalled only when requirements.txt or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The data first: a missing dataset stops set-up here, within seconds, with the command that fixes it.
download=false
bash scripts/ensure_data.sh || case $? in
  3) download=true ;;
  *) exit 1 ;;
esac

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.installed-pins
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned packages into .venv (a few minutes the first time; log in .venv/pip.log)"
  if ! { .venv/bin/python -m pip install -r requirements.txt &&
         .venv/bin/python -m pip install --no-deps --no-build-isolation -e .; } > .venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" .venv/pip.log | tail -n 30
    echo "setup: pip failed; full log in .venv/pip.log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# Chapters are MyST text notebooks (the single source); their .ipynb twins are generated for papermill and nbval.
chapters=$(grep -l '^kernelspec:' book/*.md || true)
if [ -n "$chapters" ]; then
  .venv/bin/jupytext --quiet --to ipynb $chapters
fi
if [ "$download" = true ]; then
  echo "setup: downloading Fashion-MNIST into the data root"
  .venv/bin/python -m helpers data fashion-mnist > /dev/null || exit 1
fi
echo "setup: ready (.venv, helpers $(.venv/bin/python -c 'import helpers; print(helpers.__version__)'))"
