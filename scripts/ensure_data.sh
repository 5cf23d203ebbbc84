#!/usr/bin/env bash
# Make sure the data is there before any chapter runs, or stop at once with the command that fixes it.
# Fashion-MNIST: looked for in the data root ($EARLY_DYNAMICS_DATA or data/) and the Debian package's folder. The
# text corpus: the Debian package `fortunes` (or $EARLY_DYNAMICS_TEXT). A missing package is installed when this
# user may (root, or sudo without a password); else, when the machine is online, the Fashion-MNIST download is left
# to `python -m helpers data fashion-mnist` after set-up (exit status 3 asks for that).
set -uo pipefail
cd "$(dirname "$0")/.."

root=${EARLY_DYNAMICS_DATA:-data}
system=${FASHION_MNIST_SYSTEM_DIR:-/usr/share/datasets/fashion-mnist}  # where the Debian package puts it
text=${EARLY_DYNAMICS_TEXT:-${FORTUNES_SYSTEM_DIR:-/usr/share/games/fortunes}}  # where the Debian package puts it
present() {
  ls "$root"/FashionMNIST/raw/train-images-idx3-ubyte* > /dev/null 2>&1 ||
    ls "$system"/train-images-idx3-ubyte* > /dev/null 2>&1
}
# the book's corpus is the whole package `fortunes` (fortunes-min puts three of its files in the same folder)
text_present() { if [ -n "${EARLY_DYNAMICS_TEXT:-}" ]; then ls "$text"/* > /dev/null 2>&1; else [ -f "$text/computers" ]; fi; }

if [ "$(id -u)" -eq 0 ]; then sudo=""; elif sudo -n true 2> /dev/null; then sudo="sudo"; else sudo="-"; fi
install() {  # a Debian package, when this user may
  [ "$sudo" != "-" ] && command -v apt-get > /dev/null || return 1
  echo "setup: installing $1 (Debian package)"
  $sudo apt-get install -y -q "$1" > /dev/null 2>&1 ||
    { $sudo apt-get update -q > /dev/null 2>&1 && $sudo apt-get install -y -q "$1" > /dev/null 2>&1; }
}

text_present || install fortunes
if ! text_present; then
  cat >&2 << MSG
setup: the text corpus is missing (looked in $text).
To fix, run:  sudo apt-get install fortunes
(or point EARLY_DYNAMICS_TEXT at a folder of text files), then run this command again.
MSG
  exit 1
fi

present && exit 0
install dataset-fashion-mnist
present && exit 0

mirror=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/
if python3 -c "import urllib.request; urllib.request.urlopen('$mirror', timeout=5)" > /dev/null 2>&1; then
  exit 3  # online: torchvision downloads it into the data root once the environment is set up
fi

cat >&2 << MSG
setup: Fashion-MNIST is missing (looked in $root/FashionMNIST/raw and $system) and this machine cannot download it.
To fix, run:  sudo apt-get install dataset-fashion-mnist
(or copy the four Fashion-MNIST IDX files into $root/FashionMNIST/raw), then run this command again.
MSG
exit 1
