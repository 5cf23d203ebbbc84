"""Command line.

``python -m helpers data NAME`` loads (downloading if online) and describes a dataset.
``python -m helpers sweep params/<chapter>/<preset>.yml [--scheduler ADDRESS]`` computes a preset's sweeps,
on a Dask cluster or locally, into the results store that the chapter then loads from.
"""

from __future__ import annotations

import argparse
import contextlib
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
    sweep = commands.add_parser("sweep", help="compute the sweeps of a chapter's preset into the results store")
    sweep.add_argument("preset", help="params/<chapter>/<name>.yml")
    sweep.add_argument("--scheduler", default=None, help="Dask scheduler address (default: run here)")
    sweep.add_argument("--workers", type=int, default=0, help="start a local Dask cluster of this many workers")
    sweep.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    sweep.add_argument("--results", default=None, help="results store (default: $EARLY_DYNAMICS_RESULTS or results/)")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        return run_preset(args)

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


def run_preset(args: argparse.Namespace) -> int:
    """Compute every unit of a preset's sweeps that is not stored yet; report failures; exit non-zero on any."""
    from helpers.presets import preset_sweeps
    from helpers.store import ResultsStore
    from helpers.sweep import run_sweep

    try:
        configs = preset_sweeps(args.preset)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    store = ResultsStore(args.results)
    units = sum(len(c.seeds) for c in configs)
    print(f"{args.preset}: {len(configs)} sweeps, {units} units, results in {store.root}")
    if args.scheduler is None and not args.workers:
        for config in configs:
            run_sweep(config, store=store, progress=True)
        print("done")
        return 0
    from dask.distributed import Client

    from helpers.distributed import local_cluster, submit_units

    with contextlib.ExitStack() as stack:
        target = stack.enter_context(local_cluster(args.workers)) if args.workers else args.scheduler
        client = stack.enter_context(Client(target))
        failures = submit_units(configs, client, store, threads=args.threads, progress=True)
    for failure in failures:
        print(f"failed: seed {failure.seed} of {failure.config}: {failure.error}", file=sys.stderr)
    print("done" if not failures else f"{len(failures)} unit(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
