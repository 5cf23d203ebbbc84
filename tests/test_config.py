"""Sweep configurations: validated before any work, grids of c, changes routed to the model."""

from __future__ import annotations

import pytest

from helpers.sweeps.config import SweepConfig, c_grid


@pytest.mark.parametrize("change,match", [
    ({"arch": "transformer"}, "unknown architecture"),
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"width": 0}, "width must be a positive integer"),
    ({"depth": -2}, "depth must be a positive integer"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"c_values": []}, "c_values is empty"),
    ({"c_values": [1.0, 2.0, 2.0]}, "strictly increasing"),
    ({"c_values": [2.0, 1.0]}, "strictly increasing"),
    ({"c_values": [-1.0, 1.0]}, "positive and finite"),
    ({"n_sharpness": 4096, "n_train": 2048}, "sharpness subset"),
    ({"n_train": 70000}, "larger than the fashion-mnist training set"),
    ({"loss": "hinge"}, "unknown loss"),
    ({"sharpness": "exact"}, "sharpness must be one of"),
    ({"seeds": []}, "seeds must be"),
    ({"widht": 3}, "unknown sweep parameters"),
    ({"rise_epsilon": -0.1}, "rise_epsilon must be"),
    ({"transient_cap": 5}, "transient_cap must be a step after steps=10"),
])
def test_bad_input_is_one_clear_error_before_any_work(change, match):
    with pytest.raises(ValueError, match=match):
        SweepConfig.from_dict({"c_values": [1.0, 2.0], **change})


def test_c_grid_is_powers_of_two():
    grid = c_grid(x_max=1.0, x_step=0.5)
    assert grid == (1.0, round(2**0.5, 6), 2.0)
    assert len(c_grid()) == 61 and c_grid()[-1] == 64.0
    with pytest.raises(ValueError):
        c_grid(x_step=0)


def test_updated_routes_model_fields_and_rejects_unknown_names(tiny_config):
    changed = tiny_config.updated(width=9, seeds=[3, 4], c_values=[1.0, 4.0])
    assert changed.model.width == 9 and changed.seeds == (3, 4) and changed.c_values == (1.0, 4.0)
    assert changed.model.depth == tiny_config.model.depth and changed.n_train == tiny_config.n_train
    with pytest.raises(ValueError, match="unknown sweep parameters.*'widht'"):
        tiny_config.updated(widht=9)
