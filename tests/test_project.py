"""The project's own contract: one list of pins, a table of contents of real pages, no import side effects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import device as device_module
from tests.chapters import chapters, parameter_defaults

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_single_list_of_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements.txt" in pip_section
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins


def test_toc_lists_only_pages_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in [toc] + toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    assert files
    for name in files:
        assert any((ROOT / "book" / f"{name}{ext}").exists() for ext in (".md", ".ipynb", ".py")), name


def test_every_chapter_has_one_parameters_cell_and_imports_from_helpers():
    assert chapters()
    for path in chapters():
        assert parameter_defaults(path)
        assert "from helpers." in path.read_text() and "import *" not in path.read_text()


def test_importing_helpers_changes_no_global_state():
    code = ("import torch; s = torch.random.get_rng_state(); d = torch.get_default_dtype();"
            "import helpers, helpers.data, helpers.models, helpers.build, helpers.curvature, helpers.losses;"
            "assert torch.equal(s, torch.random.get_rng_state()) and d == torch.get_default_dtype()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_is_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_module.default_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_module.default_device().type == "cpu"
    assert device_module.resolve_device("cpu") == torch.device("cpu")


def test_seeds_must_be_integers():
    with pytest.raises(TypeError, match="seed must be an int"):
        device_module.generator(1.5)
    assert torch.equal(torch.randn(3, generator=device_module.generator(4)),
                       torch.randn(3, generator=device_module.generator(4)))


def test_no_source_file_names_a_device_by_hand():
    for path in list((ROOT / "helpers").glob("*.py")) + list((ROOT / "book").glob("*.md")):
        assert ".cuda()" not in path.read_text(), path
