"""The width of the −χ″ peak and the sharpness-reduction window, against closed forms."""

import math

import numpy as np
import pandas as pd

from helpers.analysis.curvature_peak import half_width, peak_widths, reduction_window


def test_half_width_of_a_gaussian_dip_is_its_closed_form():
    x = np.linspace(-3, 3, 601)
    sigma = 0.4
    found = half_width(x, -np.exp(-x**2 / (2 * sigma**2)))
    assert math.isclose(found["fwhm"], 2 * math.sqrt(2 * math.log(2)) * sigma, rel_tol=1e-4)
    assert math.isclose(found["at"], 0.0, abs_tol=1e-12)


def test_half_width_is_nan_where_a_flank_leaves_the_grid_or_there_is_no_dip():
    x = np.linspace(0, 1, 11)
    assert math.isnan(half_width(x, -np.exp(-x))["fwhm"])           # the minimum at the edge: no left flank
    assert math.isnan(half_width(x, np.ones_like(x))["fwhm"])        # nothing below 0
    # an asymmetric dip: the flanks are found separately, each interpolated linearly
    y = np.array([0, 0, -1, -4, -3, -3, -1, 0, 0, 0, 0], float)
    found = half_width(x, y)   # half depth −2: between −1 and −4 on the left, between −3 and −1 on the right
    assert math.isclose(found["left"], 0.3 - 2 / 3 * 0.1) and math.isclose(found["right"], 0.5 + 1 / 2 * 0.1)


def test_half_width_at_a_given_index_measures_that_minimum():
    x = np.arange(9.0)
    y = np.array([0, -2, 0, 0, 0, -6, -6, 0, 0], float)
    assert math.isclose(half_width(x, y, 1)["fwhm"], 1.0)
    assert math.isclose(half_width(x, y)["fwhm"], 2.0)


def test_peak_widths_of_a_smooth_step_in_x_scale_with_its_width():
    """χ = 1 − tanh((x − 1)/s)/2: the −χ_xx peak narrows with s, and its position follows the steepest bend."""
    x = np.round(np.arange(-1.0, 4.0 + 1e-9, 0.1), 10)
    widths = {}
    for s in (0.3, 0.6):
        chi = 1 - (1 + np.tanh((x - 1) / s)) / 4
        frame = pd.DataFrame(dict(depth=2, width=int(10 * s), c=2.0**x, chi=chi))
        widths[s] = peak_widths(frame, window=7, order=3, c_max=8.0).iloc[0]
    assert widths[0.3].fwhm < widths[0.6].fwhm
    # −χ_xx of this step peaks below its centre x = 1, at x = 1 − s·artanh(1/√3)
    assert abs(math.log2(widths[0.6].c_peak) - (1 - 0.6 * math.atanh(1 / math.sqrt(3)))) <= 0.1 + 1e-9


def test_reduction_window_in_octaves_with_the_standard_error_carried():
    saturation = pd.DataFrame(dict(depth=[2, 4], width=[512, 128], c_crit=[2.0, 2.0]))
    constants = pd.DataFrame(dict(depth=[2, 2, 4, 4], width=[512, 512, 128, 128], c_loss=[2.0, 2.0, 8.0, 8.0]))
    table = reduction_window(saturation, constants).set_index("depth")
    assert table.window_octaves.to_dict() == {2: 0.0, 4: 2.0}
    assert table.window_se.tolist() == [0.0, 0.0] and table.n_init.tolist() == [2, 2]
