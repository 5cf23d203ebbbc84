"""Every chapter's parameters: their defaults (the values of its ``parameters`` cell), checked presets, overrides.

The defaults here are the single definition; each chapter's ``parameters`` cell repeats them as literals (papermill
and nbval need literals there), and a test fails when the two drift apart. A preset ``params/<chapter>/<name>.yml``
changes some of them; an unknown name or a value of the wrong type is an error that names it.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from helpers.core.paths import REPOSITORY

PARAMS_FOLDER = REPOSITORY / "params"

_FCN_DATA = dict(dataset="fashion-mnist", loss="mse", n_train=2560, n_sharpness=512, batch_size=512,
                 sharpness="lanczos")
_STUDY_FCN = dict(dataset="fashion-mnist", loss="mse", n_train=5120, n_sharpness=2048, batch_size=512,
                  sharpness="lanczos")  # the study's λ^H subset; ten SGD steps of 512 never repeat an example

DEFAULTS: dict[str, dict[str, Any]] = {
    "01_uv_model": dict(
        widths=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], n_init=300, steps=10, c_x_max=4.0, c_x_step=0.05,
        n_monte_carlo=200000, trajectory_widths=[4, 512], trajectory_c=[1.5, 2.5, 3.0, 3.5, 3.9], late_steps=1000,
        chi_c=[0.5, 4.0, 0.05], savgol_window=9, savgol_order=3, ccrit_c_max=3.0, seed=0, check_claims=True),
    "02_catapult_dynamics": dict(
        **_STUDY_FCN, steps=10, wide=[2, 512], deep=[8, 64], c_x_max=7.0, c_x_step=0.1, seeds=[0, 1, 2, 3, 4], seed=0,
        check_claims=True, long_depth=4, long_width=128, long_c=8.0, long_steps=3000, long_points=40, edge_depth=4,
        edge_width=64, edge_n_train=1024, edge_c=[1.0, 8.0, 12.0], edge_steps=3000, edge_every=25, backend="auto"),
    "03_phase_diagrams": dict(
        arch="fcn", dataset="fashion-mnist", loss="mse", parameterization="sp", bias=False, batch_size=512, steps=10,
        n_train=5120, n_sharpness=2048, sharpness="lanczos", seeds=list(range(10)), c_x_max=8.0, c_x_step=0.1,
        depth=4, widths=[32, 64, 128, 256, 512], depth_widths=[32, 64, 128], depths=[2, 4, 8, 16], shallow_depth=2,
        shallow_widths=[512, 2048], ntp_widths=[32, 64, 128, 256],
        conv_arch="myrtle", conv_depth=5, conv_widths=[4, 8, 16], conv_dataset="fashion-mnist", conv_init="study",
        conv_seeds=[0, 1, 2], conv_n_train=1024, conv_n_sharpness=512, conv_c_x_max=8.0, conv_c_x_step=0.5,
        fit_degree=2, estimator_depth=4, estimator_width=128, estimator_seeds=[0, 1, 2, 3, 4], subset_n_sharpness=512,
        noise_depth=4, noise_width=128, backend="auto", check_claims=True),
    "04_loss_connectivity": dict(
        **_STUDY_FCN, steps=10, seeds=[0, 1, 2, 3, 4], c_x_max=8.0, c_x_step=0.1, depth=2, widths=[32, 128, 512],
        depth_width=128, depths=[2, 4, 8], interpolation_points=101, transient_cap=40,
        curve_c=[1.0, 2.0, 2.83, 4.0, 5.66, 8.0, 11.31], backend="auto", check_claims=True),
    "05_intermediate_saturation": dict(
        **_STUDY_FCN, seeds=[0, 1, 2, 3, 4], K=56.0, window_steps=4, transient_steps=10, c_x_min=-1.0, c_x_max=2.2,
        c_x_step=0.1, depth=4, widths=[128, 512, 1024], wide_depth=2, wide_widths=[512, 1024, 2048],
        savgol_window=7, savgol_order=3, ccrit_c_max=3.0, constants_c_x_max=8.0, trajectory_width=128,
        wide_trajectory_width=1024, trajectory_c=[0.5, 1.0, 2.0, 4.0], backend="auto", check_claims=True),
    "06_output_scale": dict(
        dataset="fashion-mnist", loss="mse", n_train=1024, sharpness="lanczos", steps=10, seeds=[0, 1, 2, 3, 4],
        c_x_max=8.0, c_x_step=0.1, depths=[2, 4], widths=[32, 64, 128], epsilon=0.05, trajectory_depth=4,
        trajectory_width=64, trajectory_c=[1.0, 1.68, 2.83, 4.76], alphas=[0.1, 1.0, 10.0],
        width_exponents=[-0.5, 0.0, 0.5], scale_depth=4, scale_widths=[32, 128], scale_seeds=[0, 1, 2],
        backend="auto", check_claims=True),
    "07_choosing_a_learning_rate": dict(
        cnn_channels=8, cnn_n_train=4096, cnn_n_test=2048, text_length=16, text_d_model=32, text_layers=2,
        text_n_train=4096, text_n_test=1024, batch_size=128, n_diagnose=512, n_sharpness=256,
        diagnose_seeds=[0, 1], diagnose_steps=10, c_x_min=-1.0, c_x_max=7.0, c_x_step=0.25, range_iters=100,
        train_steps=150, grid_points=5, grid_seeds=[0, 1], edge_c_x=[-3.0, 12.0, 0.5], calibration_folder="",
        check_claims=True),
}


def fits_type(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (an int is accepted where a float is; lists element-wise)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(fits_type(v, default[0]) for v in value))
    return isinstance(value, type(default))


class ParameterError(ValueError):
    """A parameter that is not the chapter's, or a value of the wrong type: shown in a notebook as its one line."""

    def _render_traceback_(self) -> list[str]:   # IPython shows these lines instead of the whole traceback
        return [f"ParameterError: {self}"]


def _unknown(chapter: str, names: list[str], known: Mapping[str, Any]) -> ParameterError:
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    return ParameterError(f"{', '.join(hints)}: not a parameter of {chapter}; its parameters are {sorted(known)}")


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill assigned in the cell it injects (``-p``, ``-y``, ``-f``), read from the kernel's input
    history (IPython's ``In``; the injected cell starts with ``# Parameters``); none outside papermill."""
    names = []
    for source in namespace.get("In", []) if isinstance(namespace.get("In"), list) else []:
        if isinstance(source, str) and source.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            names += [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                      if isinstance(t, ast.Name)]
    return names


class ChapterParameters(Mapping):
    """A chapter's parameters: its defaults with some values changed, each checked by name and type.

    Read them as attributes (``p.widths``) or as a mapping (``p["widths"]``, ``dict(p)``).
    """

    def __init__(self, chapter: str, values: Mapping[str, Any] | None = None) -> None:
        if chapter not in DEFAULTS:
            raise ValueError(f"no chapter {chapter!r}; the chapters are {sorted(DEFAULTS)}")
        defaults = DEFAULTS[chapter]
        values = dict(values or {})
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise _unknown(chapter, unknown, defaults)
        for name, value in values.items():
            if not fits_type(value, defaults[name]):
                raise ParameterError(f"{chapter}: {name}={value!r} does not have the type of its default "
                                     f"{defaults[name]!r}")
        self.chapter = chapter
        self._values = {**defaults, **values}

    @classmethod
    def from_namespace(cls, chapter: str, namespace: Mapping[str, Any]) -> ChapterParameters:
        """The chapter's parameters as a notebook's namespace holds them (after its ``parameters`` cell ran); a name
        papermill injected that is not a parameter is an error (papermill itself only warns)."""
        known = DEFAULTS.get(chapter, {})
        stray = sorted(set(injected_names(namespace)) - set(known))
        if stray:
            raise _unknown(chapter, stray, known)
        return cls(chapter, {k: namespace[k] for k in known if k in namespace})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"{self.__dict__.get('chapter')} has no parameter {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def updated(self, **changes: Any) -> ChapterParameters:
        """The same parameters with some changed (checked like the others)."""
        return ChapterParameters(self.chapter, {**self._values, **changes})


def preset_path(chapter: str, preset: str | Path) -> Path:
    """``params/<chapter>/<preset>.yml`` for a preset name, or the given path."""
    path = Path(preset)
    if path.suffix in (".yml", ".yaml"):
        return path
    return PARAMS_FOLDER / chapter / f"{preset}.yml"


def read_preset(path: str | Path) -> dict[str, Any]:
    """The values a preset file sets (a mapping of names to values). ``base: NAME`` makes it a set of changes to
    another preset of the same chapter (e.g. an appendix over ``paper``), read first."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no preset file {path}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must map parameter names to values")
    base = values.pop("base", None)
    if base is not None:
        if base == path.stem:
            raise ValueError(f"{path} names itself as its base")
        values = {**read_preset(path.with_name(f"{base}.yml")), **values}
    return values


def chapter_parameters(chapter: str, *presets: str | Path, **overrides: Any) -> ChapterParameters:
    """A chapter's defaults, changed by each preset in turn (a name in ``params/<chapter>/`` or a path), then by
    ``overrides``."""
    values: dict[str, Any] = {}
    for preset in presets:
        values.update(read_preset(preset_path(chapter, preset)))
    values.update(overrides)
    return ChapterParameters(chapter, values)
