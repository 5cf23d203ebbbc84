"""The uv model f(x) = vᵀu·x/√w on one example (x, y) = (1, y), in function space.

Full-batch gradient descent on L = (f − y)²/2 closes on two variables: the output f and λ = (‖u‖² + ‖v‖²)/w,
which is both the NTK and the trace of the Hessian. The map is integrated in float64 (it costs nothing); the
network chapters train in float32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers.nets.models import UV
from helpers.rules import constants_of, diverged, rises

MEASURES = ("top", "trace", "frobenius")


def uv_step(f: np.ndarray, lam: np.ndarray, lr: np.ndarray, width: int, y: float = 0.0):
    """One GD step: f' = f − ηrλ + η²r²f/w, λ' = λ + (ηr/w)(ηrλ − 4f), with r = f − y."""
    r = f - y
    return f - lr * r * lam + lr**2 * r**2 * f / width, lam + (lr * r / width) * (lr * r * lam - 4 * f)


def hessian_trace(f: np.ndarray, lam: np.ndarray, width: int, y: float = 0.0) -> np.ndarray:
    """tr H = λ."""
    return np.asarray(lam, dtype=float) + 0 * np.asarray(f, dtype=float)


def hessian_frobenius_sq(f: np.ndarray, lam: np.ndarray, width: int, y: float = 0.0) -> np.ndarray:
    """‖H‖_F² = λ² + 4rf/w + 2r², with r = f − y."""
    r = f - y
    return lam**2 + 4 * r * f / width + 2 * r**2


def hessian_top_eigenvalue(f: np.ndarray, lam: np.ndarray, width: int, y: float = 0.0) -> np.ndarray:
    """λ^H = max(½[λ + √(λ² + 4(r² + 2rf)/w)], abs(r)/√w), with r = f − y."""
    r = f - y
    inner = np.sqrt(np.maximum(lam**2 + 4 * (r**2 + 2 * r * f) / width, 0.0))
    return np.maximum(0.5 * (lam + inner), np.abs(r) / np.sqrt(width))


def sharpness_measure(measure: str, f: np.ndarray, lam: np.ndarray, width: int, y: float = 0.0) -> np.ndarray:
    """The named sharpness measure: ``top`` (λ^H), ``trace`` (tr H) or ``frobenius`` (‖H‖_F)."""
    if measure == "top":
        return hessian_top_eigenvalue(f, lam, width, y)
    if measure == "trace":
        return hessian_trace(f, lam, width, y)
    if measure == "frobenius":
        return np.sqrt(hessian_frobenius_sq(f, lam, width, y))
    raise ValueError(f"unknown sharpness measure {measure!r}; choose one of {MEASURES}")


def initial_state(width: int, n_init: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(f₀, λ₀) for ``n_init`` draws of u, v ~ N(0, 1)^w: f₀ = u·v/√w, λ₀ = (‖u‖² + ‖v‖²)/w."""
    if not isinstance(width, (int, np.integer)) or width <= 0:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, n_init, width))
    return (u * v).sum(1) / np.sqrt(width), ((u**2).sum(1) + (v**2).sum(1)) / width


def simulate(f0: np.ndarray, lam0: np.ndarray, lr: np.ndarray, steps: int, width: int, y: float = 0.0):
    """Trajectories f_t, λ_t [..., steps + 1] for every (initialization, learning rate) broadcast from the inputs.

    A run whose loss diverges (:func:`helpers.rules.diverged`) is divergent: its values after that step are NaN.
    """
    f, lam, lr = np.broadcast_arrays(np.asarray(f0, float), np.asarray(lam0, float), np.asarray(lr, float))
    fs, lams = [f.copy()], [lam.copy()]
    f, lam = f.copy(), lam.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            f, lam = uv_step(f, lam, lr, width, y)
            bad = diverged((f - y) ** 2 / 2)
            f, lam = np.where(bad, np.nan, f), np.where(bad, np.nan, lam)
            fs.append(f)
            lams.append(lam)
    return np.stack(fs, -1), np.stack(lams, -1)


def uv_sweep(width: int, c_values: np.ndarray, n_init: int, steps: int, seed: int, y: float = 0.0):
    """Simulate every initialization × c for each LR scaling: η = c/λ^H₀ (``top``) and η = c/tr H₀ (``trace``).

    Returns {scaling: (f [n_init, n_c, steps + 1], λ [same])} and the initial (f₀, λ₀).
    """
    f0, lam0 = initial_state(width, n_init, seed)
    c = np.asarray(c_values, dtype=float)[None, :]
    out = {}
    for scaling in ("top", "trace"):
        reference = sharpness_measure(scaling, f0, lam0, width, y)[:, None]
        out[scaling] = simulate(f0[:, None], lam0[:, None], c / reference, steps, width, y)
    return out, (f0, lam0)


def uv_critical_constants(width: int, c_values: np.ndarray, n_init: int, steps: int, seed: int,
                          y: float = 0.0, epsilon: float = 0.0) -> pd.DataFrame:
    """c_loss, c_sharp, c_max per initialization for the three sharpness measures, by the networks' rules.

    ``top`` uses η = c/λ^H₀; ``trace`` and ``frobenius`` use η = c/tr H₀.
    """
    sims, _ = uv_sweep(width, c_values, n_init, steps, seed, y)
    rows = []
    for measure in MEASURES:
        f, lam = sims["top" if measure == "top" else "trace"]
        loss = (f - y) ** 2 / 2
        sharp = sharpness_measure(measure, f, lam, width, y)
        divergent = np.isnan(f).any(-1)
        for i in range(n_init):
            flags = pd.DataFrame(dict(
                c=np.asarray(c_values, float), diverged=divergent[i],
                loss_rises=[rises(loss[i, j, 1:] / loss[i, j, 0]) for j in range(len(c_values))],
                sharp_rises=[rises(sharp[i, j, 1:] / sharp[i, j, 0], epsilon) for j in range(len(c_values))],
                sharp_complete=True))  # the closed form gives every step's sharpness
            rows.append(dict(width=width, measure=measure, seed=i, **constants_of(flags)))
    return pd.DataFrame(rows)


def frobenius_gap(constants: pd.DataFrame) -> pd.DataFrame:
    """Appendix B.4 per width: ⟨c_sharp − c_loss⟩ over initializations, with c_sharp measured by the Frobenius norm
    (η = c/tr H₀), over the initializations whose c_sharp was observed (not filled with c_max), and their share."""
    frob = constants[constants.measure == "frobenius"]
    observed = frob[~frob.c_sharp_filled]
    gap = (observed.c_sharp - observed.c_loss).groupby(observed.width).mean()
    return pd.DataFrame(dict(gap=gap, observed=(~frob.c_sharp_filled).groupby(frob.width).mean()))


def uv_chi(width: int, c_values: np.ndarray, n_init: int, steps: int, seed: int, scaling: str) -> np.ndarray:
    """χ(c) = ⟨m_T/m₀⟩ after ``steps`` steps at η = c/m₀, with m the sharpness measure ``scaling`` (``top``: λ^H,
    ``trace``: tr H, as in Section 5); diverged initializations are left out of the average."""
    f0, lam0 = initial_state(width, n_init, seed)
    m0 = sharpness_measure(scaling, f0, lam0, width)[:, None]
    c = np.asarray(c_values, dtype=float)
    fs, ls = simulate(f0[:, None, None], lam0[:, None, None], (c[None, :] / m0)[..., None], steps, width)
    return np.nanmean(sharpness_measure(scaling, fs[..., -1, -1], ls[..., -1, -1], width) / m0, axis=0)


def first_step_ratios(c: np.ndarray, x: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """First-step ratios at η = c/λ₀ (y = 0) in terms of X = f₀²/(wλ₀²): loss, trace and squared Frobenius norm.

    L₁/L₀ = (1 − c + c²X)², λ₁/λ₀ = 1 + c(c − 4)X,
    ‖H₁‖²/‖H₀‖² = [(1 + c(c − 4)X)² + (4 + 2w)X(1 − c + c²X)²] / (1 + (4 + 2w)X).
    """
    c, x = np.asarray(c, float), np.asarray(x, float)
    trace = 1 + c * (c - 4) * x
    loss = (1 - c + c**2 * x) ** 2
    return dict(loss=loss, trace=trace, frobenius=(trace**2 + (4 + 2 * width) * x * loss) / (1 + (4 + 2 * width) * x))


def first_step_loss_threshold(width: int) -> float:
    """Smallest c with ⟨L₁/L₀⟩ > 1 at η = c/λ₀: the positive root of m₂c³ − 2m₁c² + (1 + 2m₁)c − 2 = 0,

    with m₁ = ⟨X⟩ = 1/(4(w + 1)) and m₂ = ⟨X²⟩ = 3/(16(w + 1)(w + 3)) (Appendix B.3, B.8).
    """
    m1, m2 = 1 / (4 * (width + 1)), 3 / (16 * (width + 1) * (width + 3))
    roots = np.roots([m2, -2 * m1, 1 + 2 * m1, -2])
    real = roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real
    return float(real.min())


def first_step_threshold(ratio: np.ndarray, c: np.ndarray) -> float:
    """Smallest c on the grid whose averaged first-step ratio exceeds 1 (NaN if none)."""
    above = np.flatnonzero(np.asarray(ratio) > 1)
    return float(np.asarray(c)[above[0]]) if len(above) else float("nan")


def autograd_step(width: int, y: float, lr: float, seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(f, λ) before and after one gradient-descent step of a float64 torch :class:`~helpers.nets.models.UV` model on
    (x, y) = (1, y), computed by autograd (an independent check of :func:`uv_step`)."""
    model = UV(width, seed=seed).double()

    def state() -> tuple[float, float]:
        return ((model.u @ model.v).item() / width**0.5,
                ((model.u**2).sum() + (model.v**2).sum()).item() / width)

    before = state()
    loss = 0.5 * (model(torch.ones(1, dtype=torch.float64)) - y).pow(2).sum()
    grads = torch.autograd.grad(loss, [model.u, model.v])
    with torch.no_grad():
        model.u -= lr * grads[0]
        model.v -= lr * grads[1]
    return before, state()
