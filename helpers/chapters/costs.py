"""What each chapter's sweeps cost to compute, read from the results store: every unit records the wall time it
took, its device and torch's threads (:data:`~helpers.sweeps.schema.PROVENANCE_COLUMNS`), so the cost of recomputing a
chapter's defaults is measured, not typed."""

from __future__ import annotations

import pandas as pd

from helpers.chapters.parameters import chapter_parameters
from helpers.chapters.sweeps import SWEEPS, chapter_sweeps, unique_configs
from helpers.sweeps.store import ResultsStore


def sweep_costs(chapter: str, *presets: str, store: ResultsStore | None = None) -> dict:
    """For one chapter's sweeps (its defaults, or ``presets``): how many units, how many are stored, and the summed
    wall time of the stored ones in seconds, with the devices and thread counts that computed them."""
    store = store or ResultsStore()
    units = {store.unit_path(c, s): (c, s) for c in unique_configs(chapter_sweeps(chapter_parameters(chapter,
                                                                                                       *presets)))
             for s in c.seeds}
    seconds, devices, threads, stored = 0.0, set(), set(), 0
    for config, seed in units.values():
        unit = store.load(config, seed)
        if unit is None:
            continue
        stored += 1
        first = unit.runs.iloc[0]
        seconds += float(first.get("seconds", 0.0))
        devices.add(str(first.get("device", "?")))
        threads.add(int(first.get("threads", 0)))
    return dict(chapter=chapter, units=len(units), stored=stored, seconds=seconds, devices=sorted(devices),
                threads=sorted(threads))


def cost_table(store: ResultsStore | None = None) -> pd.DataFrame:
    """:func:`sweep_costs` of every chapter that runs sweeps, at its defaults, one row each, and their total."""
    rows = [sweep_costs(name, store=store) for name in sorted(SWEEPS)]
    table = pd.DataFrame(rows)
    total = dict(chapter="all", units=int(table.units.sum()), stored=int(table.stored.sum()),
                 seconds=float(table.seconds.sum()), devices=sorted({d for r in rows for d in r["devices"]}),
                 threads=sorted({t for r in rows for t in r["threads"]}))
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def describe(table: pd.DataFrame) -> str:
    """The cost table as Markdown: units stored of needed, and the compute time in CPU (or GPU) hours."""
    lines = ["| chapter | units stored / needed | compute time of the stored units | computed on |",
             "| --- | --- | --- | --- |"]
    for row in table.itertuples():
        where = ", ".join(f"{d}" for d in row.devices) + (
            f" ({', '.join(str(t) for t in row.threads)} thread{'s' if row.threads != [1] else ''} a unit)"
            if row.threads else "")
        lines.append(f"| {row.chapter} | {row.stored} / {row.units} | {row.seconds / 3600:.2f} h "
                     f"({row.seconds / 60:.0f} min) | {where} |")
    return "\n".join(lines)
