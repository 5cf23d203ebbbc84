"""Test-session hooks for every test, the chapters' notebook cells (collected from ``book/`` by nbval) included:
they live at the repository root so that they apply to ``book/`` as well as to ``tests/``."""

from __future__ import annotations

import os

import pytest

from tests.chapters import stray_outputs


def pytest_configure(config):
    """Under pytest-xdist (``-n``) each worker process takes one core: it and the kernels it starts keep to one
    thread, so that two workers on two cores do not fight over them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Under nbval, a chapter cell also fails when its output holds a stray repr or a warning (it would show in the
    book)."""
    result = yield
    outputs = getattr(item, "test_outputs", None) or []
    source = getattr(getattr(item, "cell", None), "source", "")
    if source.rstrip().endswith(";"):  # a closing semicolon hides the cell's value in the book (IPython's rule)
        outputs = [o for o in outputs if o.get("output_type") != "execute_result"]
    stray = stray_outputs(outputs)
    if stray:
        raise AssertionError("output that must not reach the book:\n" + "\n".join(stray))
    return result
