"""Symbolic averages over initialization for the uv model (sympy), in the width w.

With θ = (u, v) ~ N(0, I_{2w}) written as θ = R·n, the direction n is uniform on the sphere S^{2w−1} and
independent of R. Then f/λ = √w · (n_u·n_v), so the moments of f/λ are angular integrals: Gaussian moments
divided by radial ones, both ratios of Gamma functions.
"""

from __future__ import annotations

import sympy as sp

w = sp.Symbol("w", positive=True, integer=True)


def gaussian_moment(a: int) -> sp.Expr:
    """E[x^{2a}] for x ~ N(0, 1): 2^a Γ(a + ½)/√π."""
    return 2**a * sp.gamma(a + sp.Rational(1, 2)) / sp.sqrt(sp.pi)


def radial_moment(k: int, d: sp.Expr) -> sp.Expr:
    """E[R^{2k}] for R² ~ χ²_d: 2^k Γ(d/2 + k)/Γ(d/2)."""
    return 2**k * sp.gamma(d / 2 + k) / sp.gamma(d / 2)


def sphere_moment(exponents: list[int], d: sp.Expr) -> sp.Expr:
    """E[Π_i n_i^{2a_i}] for n uniform on S^{d−1}: Π_i E[x^{2a_i}] / E[R^{2Σa}] (x = R·n, R ⟂ n)."""
    numerator = sp.Mul(*[gaussian_moment(a) for a in exponents])
    return sp.gammasimp(numerator / radial_moment(sum(exponents), d))


def overlap_moment(p: int) -> sp.Expr:
    """E[(n_u·n_v)^{2p}] on S^{2w−1} for p = 1, 2, expanding (Σ_i n_i n_{w+i})^{2p} over index patterns."""
    d = 2 * w
    if p == 1:
        return sp.simplify(w * sphere_moment([1, 1], d))
    if p == 2:
        return sp.factor(sp.simplify(w * sphere_moment([2, 2], d) + 3 * w * (w - 1) * sphere_moment([1, 1, 1, 1], d)))
    raise ValueError("only p = 1 and p = 2 are implemented")


def moment_f_over_lambda(power: int) -> sp.Expr:
    """⟨(f₀/λ₀)^power⟩ over initialization for power 2 or 4: w^{power/2} · E[(n_u·n_v)^power]."""
    if power not in (2, 4):
        raise ValueError("power must be 2 or 4")
    return sp.factor(sp.simplify(w ** (power // 2) * overlap_moment(power // 2)))


def inner(a: dict[str, sp.Expr], b: dict[str, sp.Expr], gram: dict[tuple[str, str], sp.Expr]) -> sp.Expr:
    """⟨a, b⟩ for vectors given as combinations {name: coefficient} of named vectors with Gram entries ``gram``."""
    return sp.expand(sum(ca * cb * gram[i, j] for i, ca in a.items() for j, cb in b.items()))


def show(lhs: str, expr: sp.Expr):
    """The equation ``lhs = expr`` as an IPython ``Math`` object (rendered by MathJax in a notebook)."""
    from IPython.display import Math

    return Math(f"{lhs} = {sp.latex(expr)}")
