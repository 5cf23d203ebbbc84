"""Command line: ``python -m helpers data NAME`` loads (downloading if online) and describes a dataset."""

from __future__ import annotations

import argparse
import sys

from helpers.data import DatasetUnavailable, load_dataset


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="load a dataset (fetching it when online) and print its shape")
    data.add_argument("name", help="fashion-mnist, mnist or cifar10")
    data.add_argument("--root", default=None, help="data root (default: $EARLY_DYNAMICS_DATA or data/)")
    data.add_argument("--no-download", action="store_true", help="only look for files; never download")
    args = parser.parse_args(argv)

    try:
        for train in (True, False):
            ds = load_dataset(args.name, train=train, root=args.root, device="cpu",
                              download=not args.no_download)
            split = "train" if train else "test"
            print(f"{ds.name} {split}: x {tuple(ds.x.shape)}, y {tuple(ds.y.shape)}")
    except (DatasetUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
