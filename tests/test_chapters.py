"""Chapters: presets name only real parameters with the right types; each chapter runs through papermill."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest
import yaml

from tests.chapters import BOOK, ROOT, chapters, parameter_defaults

# A tiny override per chapter: other widths and depths, seconds to run. Claims are checked at the defaults only.
TINY = {
    "01_uv_model": dict(widths=[2, 64], n_init=20, c_x_step=0.25, n_monte_carlo=20000, late_steps=50,
                        chi_c=[1.0, 3.0, 0.1], check_claims=False),
    "02_catapult_dynamics": dict(n_train=512, n_sharpness=128, steps=3, wide=[2, 32], deep=[3, 16], c_x_max=4.0,
                                 c_x_step=1.0, long_width=16, long_steps=20, long_points=5, check_claims=False),
    "06_output_scale": dict(n_train=512, n_sharpness=128, steps=3, seeds=[0], c_x_max=4.0, c_x_step=1.0, depth=2,
                            widths=[16, 32], trajectory_width=16, trajectory_c=[1.0, 2.0], alphas=[1.0],
                            width_exponents=[0.5], scale_widths=[16], check_claims=False),
    "04_loss_connectivity": dict(n_train=512, n_sharpness=128, steps=3, seeds=[0], c_x_max=5.0, c_x_step=1.0,
                                 depth=2, widths=[16, 32], interpolation_points=5, check_claims=False),
    "05_intermediate_saturation": dict(n_train=512, n_sharpness=128, seeds=[0], K=8.0, half_window=1, c_min=0.5,
                                       c_max=2.0, c_step=0.25, depth=2, widths=[16], depths=[2], trajectory_c=[1.0],
                                       check_claims=False),
    "03_phase_diagrams": dict(n_train=512, n_sharpness=128, steps=3, seeds=[0], c_x_max=5.0, c_x_step=1.0, depth=2,
                              widths=[16, 32], width=16, depths=[2, 3], conv_widths=[4], check_claims=False),
}
STORING = {"02_catapult_dynamics", "03_phase_diagrams", "04_loss_connectivity", "05_intermediate_saturation",
           "06_output_scale"}  # the chapters that run sweeps and store them
PRESETS = sorted((ROOT / "params").glob("*/*.yml"))


def same_type(value, default) -> bool:
    """Whether a preset's value fits the type of the chapter's default (ints are accepted as floats)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(same_type(v, default[0]) for v in value) if default else \
            isinstance(value, list)
    return isinstance(value, type(default))


def test_presets_exist_for_every_chapter_folder():
    assert PRESETS
    assert {p.stem for p in chapters()} == set(TINY), "every chapter needs a tiny override here"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_preset_names_only_real_parameters_with_the_right_types(preset: Path):
    chapter = BOOK / f"{preset.parent.name}.md"
    assert chapter.exists(), f"{preset} belongs to no chapter"
    defaults = parameter_defaults(chapter)
    values = yaml.safe_load(preset.read_text())
    assert values, f"{preset} is empty"
    for name, value in values.items():
        assert name in defaults, f"{preset.name}: {name!r} is not a parameter of {chapter.name}"
        assert same_type(value, defaults[name]), f"{preset.name}: {name}={value!r} vs default {defaults[name]!r}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_overrides_are_real_parameters(name):
    defaults = parameter_defaults(BOOK / f"{name}.md")
    for key, value in TINY[name].items():
        assert key in defaults and same_type(value, defaults[key]), key


def glued(notebook: Path) -> dict:
    """The values a notebook glued with myst-nb (``display=False``), parsed back into Python values."""
    out = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = output["data"]
                markdown = data.get("application/papermill.record/text/markdown")
                text = data["application/papermill.record/text/plain"]
                out[name] = markdown if markdown is not None else (float(text) if text == "nan" else
                                                                   ast.literal_eval(text))
    return out


@pytest.mark.parametrize("name", sorted(TINY))
def test_chapter_runs_through_papermill_with_other_parameters(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EARLY_DYNAMICS_RESULTS", str(tmp_path / "results"))
    notebook = BOOK / f"{name}.ipynb"
    assert notebook.exists(), "run scripts/setup.sh to generate the chapters' notebooks"
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters=TINY[name], cwd=str(BOOK), progress_bar=False,
                               kernel_name="python3")
    values = glued(out)
    assert values, "the chapter glued nothing"
    if name == "01_uv_model":
        assert set(values["uv_closs_first_step"]) == {2, 64}
        assert {r["width"] for r in values["uv_phase_table"]["top"]} == {2, 64}
        assert values["uv_moment_f2_lam2"] == "w/(4*(w + 1))"
    if name == "06_output_scale":
        variants = {r["variant"] for r in values["output_scale_table"]}
        assert variants == {"standard", "centered", "zero-last-layer", "alpha=1", "width-scaled s=0.5"}
    if name == "04_loss_connectivity":
        rows = values["connectivity_table"]
        assert {r["width"] for r in rows} == {16, 32} and all("c_barrier" in r for r in rows)
    if name == "05_intermediate_saturation":
        assert [(r["width"], r["depth"]) for r in values["saturation_table"]] == [(16, 2)]
        assert set(values["chi_curves"]) == {16} and all(len(p) == 2 for p in values["chi_curves"][16])
    if name == "03_phase_diagrams":
        rows = values["phase_table"]
        assert {(r["depth"], r["width"]) for r in rows} == {(2, 16), (2, 32), (3, 16)}
        assert all(set(r) == {"depth", "width", "init", "c_loss", "c_sharp", "c_max"} for r in rows)
    if name in STORING:
        assert any((tmp_path / "results").iterdir()), "results were not stored where EARLY_DYNAMICS_RESULTS points"
