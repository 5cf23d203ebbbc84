"""A chapter's preset as the sweeps the chapter runs, so that they can be computed ahead (e.g. on a cluster).

A preset is ``params/<chapter>/<name>.yml``: values for the chapter's parameters cell. The chapter's defaults are
read from that cell in ``book/<chapter>.md``; the preset overrides them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from helpers.build import ModelSpec
from helpers.config import SweepConfig, c_grid
from helpers.paths import REPOSITORY

PARAMETERS_CELL = re.compile(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", re.S)


def chapter_defaults(chapter: str) -> dict:
    """The names and default values of a chapter's parameters cell (plain literals only)."""
    path = REPOSITORY / "book" / f"{chapter}.md"
    if not path.exists():
        raise ValueError(f"no chapter {chapter!r} in {path.parent}")
    cell = PARAMETERS_CELL.search(path.read_text())
    if cell is None:
        raise ValueError(f"{path.name} has no parameters cell")
    values = {}
    for node in ast.parse(cell.group(1)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def phase_diagram_sweeps(p: dict) -> list[SweepConfig]:
    """The sweeps of ``03_phase_diagrams``: widths at one depth, depths at one width, the convolutional panel."""
    base = SweepConfig(model=ModelSpec(p["arch"], p["depth"], p["width"], p["parameterization"], p["bias"]),
                       dataset=p["dataset"], loss=p["loss"], n_train=p["n_train"], n_sharpness=p["n_sharpness"],
                       batch_size=p["batch_size"], steps=p["steps"], c_values=c_grid(p["c_x_max"], p["c_x_step"]),
                       seeds=tuple(p["seeds"]))
    configs = [base.with_model(depth=p["depth"], width=w) for w in p["widths"]]
    configs += [base.with_model(depth=d, width=p["width"]) for d in p["depths"]]
    if p["conv_widths"]:
        conv = SweepConfig.from_dict({**base.key_dict(), **base.model.as_dict(), "seeds": p["seeds"],
                                      "arch": p["conv_arch"], "dataset": p["conv_dataset"]})
        configs += [conv.with_model(depth=p["conv_depth"], width=w) for w in p["conv_widths"]]
    unique = {}
    for config in configs:
        unique.setdefault((config.key_dict().__repr__(), config.seeds), config)
    return list(unique.values())


SWEEPS = {"03_phase_diagrams": phase_diagram_sweeps}


def preset_sweeps(preset: str | Path) -> list[SweepConfig]:
    """The sweeps a preset ``params/<chapter>/<name>.yml`` makes its chapter run."""
    path = Path(preset)
    chapter = path.parent.name
    if chapter not in SWEEPS:
        raise ValueError(f"no sweep definition for chapter {chapter!r}; presets of {sorted(SWEEPS)} can run as sweeps")
    values = yaml.safe_load(path.read_text()) or {}
    defaults = chapter_defaults(chapter)
    unknown = set(values) - set(defaults)
    if unknown:
        raise ValueError(f"{path.name}: {sorted(unknown)} are not parameters of {chapter}")
    return SWEEPS[chapter]({**defaults, **values})
