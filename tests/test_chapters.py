"""Chapters: their parameters cells match ``helpers.chapters.parameters``, presets name real parameters, and every
preset runs end to end through papermill (shrunk by the chapter's ``smoke.yml``) with clean outputs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest

from helpers.chapters.parameters import DEFAULTS, ChapterParameters, chapter_parameters, read_preset
from helpers.chapters.sweeps import SWEEPS, phase_diagram_sweeps
from helpers.sweeps.config import c_grid
from tests.chapters import BOOK, ROOT, chapters, executable_pages, parameters_cell_values, stray_outputs

PRESETS = sorted((ROOT / "params").glob("*/*.yml"))
STORING = set(SWEEPS)  # the chapters that run sweeps and store them


def preset_id(preset: Path) -> str:
    return f"{preset.parent.name}/{preset.stem}"


def test_the_chapters_are_listed_once_and_every_list_agrees():
    import yaml

    assert {p.stem for p in executable_pages()} == set(DEFAULTS) | {"status"}
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [entry["file"] for entry in toc["chapters"]]
    assert [name for name in listed if name in DEFAULTS] == sorted(DEFAULTS) and "status" in listed
    for text in ((BOOK / "intro.md").read_text(), (ROOT / "README.md").read_text()):
        assert all(name in text for name in DEFAULTS)
    for name in DEFAULTS:
        assert (ROOT / "params" / name / "smoke.yml").exists(), f"params/{name}/smoke.yml is missing"


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.stem)
def test_parameters_cell_is_the_defaults_in_helpers(chapter: Path):
    assert parameters_cell_values(chapter) == DEFAULTS[chapter.stem]


@pytest.mark.parametrize("preset", PRESETS, ids=preset_id)
def test_preset_names_only_real_parameters_with_the_right_types(preset: Path):
    values = read_preset(preset)
    assert values, f"{preset} is empty"
    ChapterParameters(preset.parent.name, values)  # raises on an unknown name or a wrong type


def test_a_bad_preset_value_is_one_clear_error():
    with pytest.raises(ValueError, match=r"'widhts' \(did you mean 'widths'.*\): not a parameter of 03_phase"):
        ChapterParameters("03_phase_diagrams", {"widhts": [3]})
    with pytest.raises(ValueError, match="seeds=3 does not have the type"):
        ChapterParameters("03_phase_diagrams", {"seeds": 3})
    with pytest.raises(ValueError, match="no chapter '99_x'"):
        ChapterParameters("99_x")


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


def check_smoke_values(name: str, values: dict) -> None:
    """What the smoke sizes (``params/<chapter>/smoke.yml``) must glue."""
    if name == "01_uv_model":
        assert set(values["uv_closs_first_step"]) == {2, 64}
        assert [r["width"] for r in values["uv_phase_table"]["top"]] == [2, 64]  # one row per width
        assert values["uv_moment_f2_lam2"] == "w/(4*(w + 1))"
        assert set(values["uv_top_over_trace"]) == {2, 64} and all(r >= 1 for r in values["uv_top_over_trace"].values())
    if name == "06_output_scale":
        variants = {r["variant"] for r in values["output_scale_table"]}
        assert variants == {"standard", "centered", "zero-last-layer", "alpha=1", "width-scaled s=0.5"}
        assert all(ratio > 0 for ratio in values["eta_max_ratio"].values())
    if name == "04_loss_connectivity":
        rows = values["connectivity_table"]
        assert {r["width"] for r in rows} == {16, 32} and all("c_barrier" in r for r in rows)
    if name == "05_intermediate_saturation":
        assert [(r["width"], r["depth"]) for r in values["saturation_table"]] == [(16, 2), (24, 2)]
        assert set(values["chi_curves"]) == {16, 24} and all(len(p) == 2 for p in values["chi_curves"][16])
        assert {(r["width"], r["depth"]) for r in values["window_table"]} == {(16, 2), (24, 2)}
        assert all({"fwhm", "c_crit", "c_loss", "window_octaves"} <= set(r) for r in values["window_table"])
        assert [set(v) for v in values["saturation_verdicts"]] == [{"claim", "verdict", "evidence"}] * 6
        assert all(set(r) == {"depth", "width", "c", "step", "movement", "split"} for r in values["movement_table"])
        assert values["movement_table"] and all(r["movement"] >= 0 for r in values["movement_table"])
    if name == "07_choosing_a_learning_rate":
        rows = values["lr_study_table"]
        assert {r["method"] for r in rows} == {"diagnose", "range-test", "grid"}
        assert {r["model"] for r in rows} == {"cnn", "transformer"}
        assert all(set(r) == {"model", "method", "lr", "seed", "cost_s", "final_train_loss", "final_test_loss"}
                   for r in rows)
        assert {(r["model"], r["seed"]) for r in values["diagnosis_table"]} == {("cnn", 0), ("transformer", 0)}
        assert {r["optimizer"] for r in values["edges_table"]} == {"SGD", "SGD, momentum 0.9", "Adam"}
        keys = {"model", "optimizer", "seed", "eta_diagnose", "eta_range_test", "eta_best", "loss_diagnose",
                "loss_range_test", "loss_best", "eta_max_predicted", "eta_max_observed", "held_out"}
        calibration = values["calibration_table"]
        assert len(calibration) == 8 * 2 * 3 and all(set(r) == keys for r in calibration)
        assert sum(r["held_out"] for r in calibration) == 24
        assert set(values["calibration_rule"]) == {"sgd", "adam"}
    if name == "03_phase_diagrams":
        rows = values["phase_table"]
        assert {(r["depth"], r["width"]) for r in rows} == {(2, 16), (2, 32), (3, 16), (2, 48)}
        assert all(set(r) == {"depth", "width", "init", "c_loss", "c_sharp", "c_max"} for r in rows)
        assert {r["width"] for r in values["phase_table_conv"]} == {4}
        subset = {(r["n_sharpness"], r["init"]) for r in values["subset_table"]}
        assert subset == {(n, seed) for n in (64, 128) for seed in (0, 1)}
        assert values["ordering_power"]["total"] == len(rows)
        assert {(r["depth"], r["width"]) for r in values["averages_observed"]} == {(2, 16), (2, 32), (3, 16), (2, 48)}
        assert set(values["subset_differ"]) == {"c_loss", "c_sharp", "c_max"}
        networks = {(r["depth"], r["width"]) for r in values["divergence_rule_table"]}
        assert networks == {(2, 16), (2, 32), (3, 16), (2, 48)}
        assert values["divergence_rule_n"] == len(rows) and 0 <= values["divergence_rule_changed"] <= len(rows)
        assert [r["arm"] for r in values["noise_decomposition"]] == [
            "both vary", "initialization varies (batch order fixed)", "batch order varies (initialization fixed)"]
    if name == "02_catapult_dynamics":
        assert set(values["catapult_summary"]) == {"wide", "deep"}
        assert all({"c_loss", "c_sharp", "c_max", "n_init", "sharp_above_loss"} <= set(v)
                   for v in values["catapult_summary"].values())
        assert [r["c"] for r in values["edge_table"]] == [1.0, 4.0]
        assert set(values["edge_ratio"]) == {"mean", "min", "max", "c", "from_step"}
        assert all({"early transient", "intermediate saturation", "progressive sharpening", "edge of stability",
                    "late_mean"} <= set(r) for r in values["edge_table"])


def test_the_convolutional_panel_has_its_own_initializations_data_and_grid():
    p = chapter_parameters("03_phase_diagrams")
    sweeps = phase_diagram_sweeps(p)
    assert [c.model.width for c in sweeps["conv"]] == p.conv_widths and len(p.conv_widths) >= 3
    for config in sweeps["conv"]:
        assert (config.model.arch, config.seeds, config.n_train) == (p.conv_arch, tuple(p.conv_seeds), p.conv_n_train)
        assert config.c_values == c_grid(p.conv_c_x_max, p.conv_c_x_step) and config.n_sharpness == p.conv_n_sharpness
    for config in sweeps["by_width"]:  # the FCNs keep the chapter's own
        assert (config.seeds, config.n_train, config.c_values) == (tuple(p.seeds), p.n_train,
                                                                   c_grid(p.c_x_max, p.c_x_step))


@pytest.mark.parametrize("preset", [p if p.stem == "smoke" else pytest.param(p, marks=pytest.mark.full)
                                    for p in PRESETS], ids=preset_id)
def test_preset_runs_end_to_end_at_smoke_size(preset: Path, tmp_path, monkeypatch, preset_data_root):
    name = preset.parent.name
    monkeypatch.setenv("EARLY_DYNAMICS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("EARLY_DYNAMICS_DATA", str(preset_data_root))
    monkeypatch.setenv("EARLY_DYNAMICS_TEXT", str(preset_data_root / "text"))
    parameters = dict(chapter_parameters(name, preset, "smoke"))
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(BOOK / f"{name}.ipynb"), str(out), parameters=parameters, cwd=str(BOOK),
                               progress_bar=False, kernel_name="python3")
    values = glued(out)
    assert values, "the chapter glued nothing"
    if preset.stem == "smoke":
        check_smoke_values(name, values)
    if name in STORING:
        assert any((tmp_path / "results").iterdir()), "results were not stored where EARLY_DYNAMICS_RESULTS points"
    cells = json.loads(out.read_text())["cells"]
    stray = stray_outputs([o for cell in cells for o in cell.get("outputs", [])])
    assert not stray, f"output that must not reach the book: {stray}"


@pytest.mark.parametrize("parameters, message", [
    ({"widht": [64]}, "'widht' (did you mean 'widths'?): not a parameter of 03_phase_diagrams"),
    ({"widths": "64"}, "03_phase_diagrams: widths='64' does not have the type of its default"),
])
def test_a_typo_or_a_wrong_type_through_papermill_fails_at_once_in_one_line(parameters, message, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        papermill.execute_notebook(str(BOOK / "03_phase_diagrams.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters=parameters, cwd=str(BOOK), kernel_name="python3", progress_bar=False)
    error = caught.value
    assert error.ename == "ParameterError" and message in error.evalue
    assert len(error.traceback) == 1 and message in error.traceback[0]   # the one line, not a traceback


@pytest.mark.full
def test_a_rerun_chapter_renders_as_one_page_with_its_glued_values(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("EARLY_DYNAMICS_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "rerun.ipynb"
    papermill.execute_notebook(str(BOOK / "06_output_scale.ipynb"), str(out), cwd=str(BOOK), kernel_name="python3",
                               parameters=read_preset(ROOT / "params" / "06_output_scale" / "smoke.yml"),
                               progress_bar=False)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "render_page.sh"), str(out), str(tmp_path / "page")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "page" / "rerun.html").read_text()
    source = "".join("".join(c["source"]) for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "markdown")
    assert "{glue" in source and "{glue" not in page          # the prose's roles were filled in from the run
