"""Command line.

``python -m helpers data NAME`` loads (downloading if online) and describes a dataset.
``python -m helpers sweep CHAPTER [PRESET ...]`` computes the sweeps that a chapter runs with a preset (a name in
``params/CHAPTER/`` or a path; several are applied in turn) into the results store, which the chapter run with the
same parameters then loads; ``python -m helpers sweep all [PRESET ...]`` does it for every chapter that runs sweeps
(each with its own preset of that name), as one pool of units (``make book`` computes the defaults this way on
every core before the book executes its chapters). ``--backend`` picks where: ``serial`` (here), ``processes``
(local worker processes) or ``dask`` (``--scheduler ADDRESS``, or a local cluster of ``--workers`` processes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.data.images import DatasetUnavailable, load_dataset
from helpers.core.files import FolderNotWritable


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="load a dataset (fetching it when online) and print its shape")
    data.add_argument("name", help="fashion-mnist, mnist or cifar10")
    data.add_argument("--root", default=None, help="data root (default: $EARLY_DYNAMICS_DATA or data/)")
    data.add_argument("--no-download", action="store_true", help="only look for files; never download")
    sweep = commands.add_parser("sweep", help="compute a chapter's sweeps (with presets) into the results store")
    sweep.add_argument("chapter", help="a chapter, e.g. 03_phase_diagrams (or a preset path params/<chapter>/x.yml), "
                                       "or all: every chapter that runs sweeps")
    sweep.add_argument("presets", nargs="*", help="preset names in params/<chapter>/ or paths, applied in turn "
                                                  "(with all: names, each chapter's own preset of that name)")
    sweep.add_argument("--backend", default=None, help="serial, processes or dask (default: dask with --scheduler "
                                                       "or --workers, else serial)")
    sweep.add_argument("--scheduler", default=None, help="Dask scheduler address")
    sweep.add_argument("--workers", type=int, default=None,
                       help="worker processes (processes backend, or a local Dask cluster)")
    sweep.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    sweep.add_argument("--results", default=None, help="results store (default: $EARLY_DYNAMICS_RESULTS or results/)")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        return run_chapter_sweeps(args)

    try:
        for train in (True, False):
            ds = load_dataset(args.name, train=train, root=args.root, device="cpu",
                              download=not args.no_download)
            split = "train" if train else "test"
            print(f"{ds.name} {split}: x {tuple(ds.x.shape)}, y {tuple(ds.y.shape)}")
    except (DatasetUnavailable, FolderNotWritable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def backend_of(args: argparse.Namespace):
    """The backend the arguments ask for."""
    from helpers.sweeps.backends import get_backend

    name = args.backend or ("dask" if args.scheduler or args.workers else "serial")
    options: dict = {"progress": True}
    if name == "dask":
        options.update(scheduler=args.scheduler, threads=args.threads)
    if name in ("dask", "processes") and args.workers:
        options["workers"] = args.workers
    if name == "processes" and args.threads:
        options["threads"] = args.threads
    return get_backend(name, **options)


def run_chapter_sweeps(args: argparse.Namespace) -> int:
    """Compute every unit of a chapter's sweeps that is not stored yet; report failures; exit non-zero on any."""
    from helpers.chapters.parameters import chapter_parameters
    from helpers.chapters.sweeps import SWEEPS, chapter_sweeps, unique_configs
    from helpers.sweeps.store import ResultsStore
    from helpers.sweeps.compute import SweepFailed, compute_missing

    chapter, presets = args.chapter, list(args.presets)
    if chapter.endswith((".yml", ".yaml")):  # params/<chapter>/<name>.yml
        chapter, presets = Path(chapter).parent.name, [chapter, *presets]
    chapters = sorted(SWEEPS) if chapter == "all" else [chapter]
    try:
        sweeps = [chapter_sweeps(chapter_parameters(name, *presets)) for name in chapters]
        configs = unique_configs({f"{i} {group}": configs for i, found in enumerate(sweeps)
                                  for group, configs in found.items()})
        backend = backend_of(args)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    store = ResultsStore(args.results)
    units = len({store.unit_path(c, s) for c in configs for s in c.seeds})
    print(f"{chapter} {' '.join(presets)}: {len(configs)} sweeps, {units} units, results in {store.root}")
    try:
        computed = compute_missing(configs, store, backend)
    except SweepFailed as err:
        print(f"failed: {err}", file=sys.stderr)
        return 1
    except (DatasetUnavailable, FolderNotWritable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {computed} unit(s) computed, {units - computed} already stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
