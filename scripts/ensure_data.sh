#!/usr/bin/env bash
# Make sure Fashion-MNIST is there before any chapter runs, or stop at once with the command that fixes it.
# Looks in the data root ($EARLY_DYNAMICS_DATA or data/) and the Debian package's folder; installs the package
# when this user may (root, or sudo without a password); else, when the machine is online, leaves the download to
# `python -m helpers data fashion-mnist` after set-up (exit status 3 asks for that).
set -uo pipefail
cd "$(dirname "$0")/.."

root=${EARLY_DYNAMICS_DATA:-data}
system=${FASHION_MNIST_SYSTEM_DIR:-/usr/share/datasets/fashion-mnist}  # where the Debian package puts it
present() {
  ls "$root"/FashionMNIST/raw/train-images-idx3-ubyte* > /dev/null 2>&1 ||
    ls "$system"/train-images-idx3-ubyte* > /dev/null 2>&1
}
present && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; elif sudo -n true 2> /dev/null; then sudo="sudo"; else sudo="-"; fi
if [ "$sudo" != "-" ] && command -v apt-get > /dev/null; then
  echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
  $sudo apt-get install -y -q dataset-fashion-mnist > /dev/null 2>&1 ||
    { $sudo apt-get update -q > /dev/null 2>&1 && $sudo apt-get install -y -q dataset-fashion-mnist > /dev/null 2>&1; }
  present && exit 0
fi

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
