#!/usr/bin/env bash
# Render a chapter that papermill re-ran (its prose's {glue} values filled in from that run's outputs) as one HTML
# page, without running it again:   bash scripts/render_page.sh out.ipynb [folder]
# The page goes to folder (default: _build/pages/<notebook's name>/), with the book's configuration but execution off.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
notebook=$(realpath "${1:?usage: scripts/render_page.sh OUT.ipynb [FOLDER]}")
name=$(basename "$notebook" .ipynb)
out=$(realpath -m "${2:-$root/_build/pages/$name}")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$notebook" "$scratch/$name.ipynb"
cp "$root/book/references.bib" "$scratch/"
sed 's/execute_notebooks: force/execute_notebooks: "off"/' "$root/_config.yml" > "$scratch/_config.yml"
(cd "$scratch" && "$root/.venv/bin/jupyter-book" build "$name.ipynb" --config _config.yml > build.log 2>&1) ||
  { tail -n 20 "$scratch/build.log"; exit 1; }
mkdir -p "$out"
cp -r "$scratch/_build/_page/$name/html/." "$out/"
echo "render_page: $out/$name.html"
