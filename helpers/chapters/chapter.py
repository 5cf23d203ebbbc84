"""What every chapter does before its science, in one call: read its parameters (its ``parameters`` cell, then the
preset that ``$EARLY_DYNAMICS_PRESET`` names, e.g. ``smoke`` for a small build of the whole book), glue each one for
the prose as ``param_<name>``, and compute every unit of its sweeps that the store lacks in one batch. Then it loads
sweeps by group and publishes the tables other tools read (plain lists of dicts of numbers)::

    chapter = Chapter.open("03_phase_diagrams", globals())
    runs = chapter.runs("by_width")
    chapter.table("phase_table", constants, {"depth": "depth", "seed": "init", ...})
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.chapters.parameters import ChapterParameters, preset_path, read_preset
from helpers.chapters.sweeps import SWEEPS, Sweeps, chapter_sweeps
from helpers.analysis.phases import plain, plain_rows
from helpers.analysis.plots import use_book_style
from helpers.sweeps.schema import Unit
from helpers.sweeps.compute import compute_sweeps, sweeps_results

PRESET_ENV_VAR = "EARLY_DYNAMICS_PRESET"


def _glue(name: str, value: Any) -> None:
    from myst_nb import glue  # here: only a notebook glues

    glue(name, value, display=False)


def plain_value(value: Any) -> Any:
    """``value`` as plain Python for gluing: numbers via :func:`~helpers.analysis.phases.plain`, lists and dicts
    element-wise."""
    if isinstance(value, Mapping):
        return {plain_value(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return plain(value)


@dataclass
class Chapter:
    """A chapter's parameters ``p``, its sweeps (named groups of configurations) and how many units it computed."""

    name: str
    p: ChapterParameters
    sweeps: Sweeps
    computed: int

    @classmethod
    def open(cls, name: str, namespace: MutableMapping[str, Any], glue: bool = True) -> Chapter:
        """The chapter ``name`` with the parameters its notebook ``namespace`` holds (after papermill's, if any),
        changed by the preset ``$EARLY_DYNAMICS_PRESET`` names, written back into ``namespace``; its missing units
        computed."""
        use_book_style()
        p = ChapterParameters.from_namespace(name, namespace)
        preset = os.environ.get(PRESET_ENV_VAR)
        if preset:
            p = p.updated(**read_preset(preset_path(name, preset)))
            namespace.update(dict(p))
        if glue:
            for key, value in p.items():
                _glue(f"param_{key}", plain_value(value))
        sweeps = chapter_sweeps(p) if name in SWEEPS else {}
        computed = compute_sweeps(sweeps, backend=p.get("backend")) if sweeps else 0
        return cls(name, p, sweeps, computed)

    def results(self, *groups: str) -> Unit:
        """Both tables (runs and interpolated losses) of the named sweep groups, loaded from the store."""
        configs = [config for group in groups for config in self.sweeps[group]]
        return sweeps_results(configs, backend=self.p.get("backend"))

    def runs(self, *groups: str) -> pd.DataFrame:
        """The runs of the named sweep groups, a row per (sweep, initialization, c, step)."""
        return self.results(*groups).runs

    @staticmethod
    def glue(name: str, value: Any) -> Any:
        """Glue ``value`` (as plain Python) under ``name``; return it."""
        value = plain_value(value)
        _glue(name, value)
        return value

    @classmethod
    def publish(cls, text: Mapping[str, str] | None = None, **values: Any) -> None:
        """A section's results in one call: each of ``values`` glued as plain Python under its name (numbers,
        lists, dicts: what other tools read), each of ``text`` as Markdown for the prose's ``{glue:md}`` roles."""
        for name, value in values.items():
            cls.glue(name, value)
        if text:
            from IPython.display import Markdown

            for name, value in text.items():
                _glue(name, Markdown(value))

    @staticmethod
    def table(name: str, frame: pd.DataFrame, columns: Mapping[str, str] | list[str]) -> list[dict]:
        """Glue the rows of ``frame`` as plain dicts under ``name`` (``columns``: old → new names, or a list)."""
        columns = dict(zip(columns, columns)) if isinstance(columns, list) else dict(columns)
        rows = plain_rows(frame, columns)
        _glue(name, rows)
        return rows
