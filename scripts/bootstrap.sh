#!/usr/bin/env bash
# Create .venv with kcore and every plugin distribution installed editable, plus
# what the test suite needs. Safe to re-run: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi

args=(-e ".[test]")
for project in plugins/*/pyproject.toml; do
    [ -e "$project" ] || continue
    args+=(-e "$(dirname "$project")")
done
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"

bash scripts/system-packages.sh
touch "$VENV/.kcore-installed"
echo "kcore environment ready: $VENV/bin/kcore"
