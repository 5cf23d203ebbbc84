#!/usr/bin/env bash
# The README's build command as a new machine runs it the first time, at smoke size: an empty data root (the data is
# staged from the Debian package's folder by the pool's processes at once), an empty results store and no shipped
# results, the process pool on every core; then the check of the built pages. The build goes to a scratch folder.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
start=$(date +%s)
EARLY_DYNAMICS_DATA="$scratch/data" EARLY_DYNAMICS_RESULTS="$scratch/results" EARLY_DYNAMICS_SHIPPED="" \
  make --no-print-directory book PRESET=smoke BOOK_OUT="$scratch"
echo "book_from_scratch: the smoke-sized book built from empty folders in $(( $(date +%s) - start )) s"
