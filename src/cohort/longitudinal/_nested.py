"""Profiled (RE)ML and Satterthwaite df for two nested random intercepts, ``(1 | outer/inner)``.

``y = X b + u_outer + u_inner + e`` with ``u_outer ~ N(0, s2 t_out^2)``,
``u_inner ~ N(0, s2 t_in^2)``, ``e ~ N(0, s2)``; ``theta = (t_in, t_out)`` in lme4's order
(the inner term, with more levels, first). ``V / s2`` is inverted in closed form by two nested
Woodbury steps, so everything reduces to per-cell sums (cell = inner group): no matrix bigger
than p x p is formed. Satterthwaite df as lmerTest: the covariance of ``(theta, sigma)`` from
the Hessian of the REML deviance with sigma free, and the gradient of ``var(L b)`` in them,
both by central differences with Richardson extrapolation (numDeriv's method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class NestedFit:
    theta: np.ndarray  # (t_in, t_out)
    sigma: float
    beta: np.ndarray
    vcov: np.ndarray
    df: np.ndarray
    deviance: float
    loglik: float


class NestedLMM:
    """Sufficient statistics of the model and its deviance functions."""

    def __init__(self, y, X, outer_codes, inner_codes, *, reml: bool, z: np.ndarray | None = None) -> None:
        """``z``: the random-intercept column, ``sqrt(w)`` with prior weights ``w`` (``y`` and ``X``
        then scaled by it too); ones without weights."""
        n, p = X.shape
        z = np.ones(n) if z is None else np.asarray(z, dtype=float)
        self.n, self.p, self.reml = n, p, reml
        self.beta0, *_ = np.linalg.lstsq(X, y, rcond=None)
        e = y - X @ self.beta0  # centred on the OLS fit (no cancellation in r'V^-1 r)
        cells, cell = np.unique(np.column_stack([outer_codes, inner_codes]), axis=0, return_inverse=True)
        cell = cell.ravel()
        C = len(cells)
        self.cells = cells  # (outer code, inner code) of each cell
        self.cell_outer = np.unique(cells[:, 0], return_inverse=True)[1].ravel()
        self.G = int(self.cell_outer.max()) + 1
        self.nc = np.bincount(cell, weights=z * z, minlength=C)  # z'z per cell (the count when z = 1)
        self.sx = np.stack([np.bincount(cell, weights=z * X[:, j], minlength=C) for j in range(p)], axis=1)
        self.sy = np.bincount(cell, weights=z * e, minlength=C)
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ e, float(e @ e)

    def _quad(self, theta):
        """X'V0^-1 X, X'V0^-1 y, y'V0^-1 y and log det V0 (V0 = V / s2)."""
        t1, t2 = float(theta[0]) ** 2, float(theta[1]) ** 2
        f = 1 + self.nc * t1
        a = t1 / f
        u_x = self.sx / f[:, None]
        u_y = self.sy / f
        m = self.nc / f
        M = np.bincount(self.cell_outer, weights=m, minlength=self.G)
        gx = np.stack([np.bincount(self.cell_outer, weights=u_x[:, j], minlength=self.G)
                       for j in range(self.p)], axis=1)
        gy = np.bincount(self.cell_outer, weights=u_y, minlength=self.G)
        b = t2 / (1 + t2 * M)
        A = self.XtX - (self.sx * a[:, None]).T @ self.sx - (gx * b[:, None]).T @ gx
        c = self.Xty - (self.sx * a[:, None]).T @ self.sy - (gx * b[:, None]).T @ gy
        d = self.yty - float(a @ self.sy**2) - float(b @ gy**2)
        logdet = float(np.sum(np.log(f)) + np.sum(np.log1p(t2 * M)))
        return A, c, d, logdet

    def conditional_modes(self, theta, beta) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Conditional modes of the random effects and their conditional variances / sigma^2.

        ``u = D Z' V^-1 (y - X beta)`` and ``D - D Z' V^-1 Z D`` (lme4's ``ranef(condVar=TRUE)``,
        beta fixed), in closed form: returns (u_outer by outer code, var_outer, u_inner by cell,
        var_inner by cell), the variances relative to sigma^2.
        """
        t1, t2 = float(theta[0]) ** 2, float(theta[1]) ** 2
        s = self.sy - self.sx @ (np.asarray(beta) - self.beta0)  # residual sum per cell
        f = 1 + self.nc * t1
        M = np.bincount(self.cell_outer, weights=self.nc / f, minlength=self.G)
        gy = np.bincount(self.cell_outer, weights=s / f, minlength=self.G)
        b = t2 / (1 + t2 * M)
        co = self.cell_outer
        u_outer = t2 * gy / (1 + t2 * M)
        u_inner = t1 * (s - b[co] * self.nc * gy[co]) / f
        var_outer = t2 / (1 + t2 * M)
        var_inner = t1 - t1**2 * (self.nc / f - b[co] * (self.nc / f) ** 2)
        return u_outer, var_outer, u_inner, var_inner

    def profiled(self, theta) -> float:
        A, c, d, logdet = self._quad(theta)
        beta = np.linalg.solve(A, c)
        r2 = max(d - float(beta @ c), 1e-300)
        if self.reml:
            k = self.n - self.p
            return logdet + float(np.linalg.slogdet(A)[1]) + k * (1 + LOG2PI + np.log(r2 / k))
        return logdet + self.n * (1 + LOG2PI + np.log(r2 / self.n))

    def deviance_vp(self, varpar) -> float:
        """lmerTest's devfun_vp: the deviance at (theta, sigma), sigma not profiled."""
        theta, sigma2 = varpar[:2], float(varpar[2]) ** 2
        A, c, d, logdet = self._quad(theta)
        beta = np.linalg.solve(A, c)
        r2 = d - float(beta @ c)
        dev = logdet + r2 / sigma2 + self.n * (LOG2PI + np.log(sigma2))
        if self.reml:
            dev += float(np.linalg.slogdet(A)[1]) - self.p * (LOG2PI + np.log(sigma2))
        return dev

    def vcov_vp(self, varpar) -> np.ndarray:
        A, *_ = self._quad(varpar[:2])
        return float(varpar[2]) ** 2 * np.linalg.inv(A)

    def fit(self) -> NestedFit:
        best = None
        for x0 in ([1.0, 1.0], [0.5, 2.0], [2.0, 0.5]):
            r = optimize.minimize(self.profiled, x0, method="L-BFGS-B", bounds=[(0, None), (0, None)],
                                  options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
            if best is None or r.fun < best.fun:
                best = r
        theta = np.asarray(best.x, dtype=float)
        theta = _polish(self.profiled, theta)
        A, c, d, _ = self._quad(theta)
        delta = np.linalg.solve(A, c)
        r2 = d - float(delta @ c)
        sigma2 = r2 / (self.n - self.p if self.reml else self.n)
        vcov = sigma2 * np.linalg.inv(A)
        dev = self.profiled(theta)
        varpar = np.r_[theta, np.sqrt(sigma2)]
        df = satterthwaite(self, varpar, np.eye(self.p))
        return NestedFit(theta, float(np.sqrt(sigma2)), self.beta0 + delta, vcov, df, dev, -dev / 2)


def _polish(f, x, steps: int = 8) -> np.ndarray:
    """A few Newton steps on interior coordinates (finite differences) to reach the optimum."""
    x = x.copy()
    free = x > 1e-6
    if not free.any():
        return x
    for _ in range(steps):
        def fx(v, base=x):
            return f(_put(base, free, v))

        g = _richardson(fx, x[free])
        H = _hessian(fx, x[free])
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.any(np.linalg.eigvalsh(H) <= 0):
            break
        new = x.copy()
        new[free] = np.maximum(x[free] - step, 0.0)
        if f(new) > f(x):
            break
        x = new
        if np.max(np.abs(step)) < 1e-12:
            break
    return x


def _put(x, mask, v):
    out = x.copy()
    out[mask] = v
    return out


def _richardson(f, x, *, h0: float = 1e-3, r: int = 4) -> np.ndarray:
    """Gradient by central differences with Richardson extrapolation (as numDeriv::grad)."""
    x = np.asarray(x, dtype=float)
    out = np.empty(len(x))
    for i in range(len(x)):
        h = h0 * max(abs(x[i]), 1e-2)
        tab = []
        for k in range(r):
            hk = h / 2**k
            e = np.zeros_like(x)
            e[i] = hk
            tab.append((f(x + e) - f(x - e)) / (2 * hk))
        for m in range(1, r):
            tab = [(4**m * tab[k + 1] - tab[k]) / (4**m - 1) for k in range(len(tab) - 1)]
        out[i] = tab[0]
    return out


def _hessian(f, x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    k = len(x)
    H = np.empty((k, k))
    for i in range(k):
        def gi(v, i=i):
            return _richardson(f, v)[i]
        H[i] = _richardson(gi, x, h0=1e-3)
    return (H + H.T) / 2


def _jacobian(f, x) -> np.ndarray:
    """Jacobian of a vector function, Richardson-extrapolated central differences."""
    x = np.asarray(x, dtype=float)
    f0 = np.asarray(f(x), dtype=float).ravel()
    J = np.empty((len(f0), len(x)))
    for i in range(len(x)):
        h = 1e-3 * max(abs(x[i]), 1e-2)
        tab = []
        for k in range(4):
            hk = h / 2**k
            e = np.zeros_like(x)
            e[i] = hk
            tab.append((np.ravel(f(x + e)) - np.ravel(f(x - e))) / (2 * hk))
        for m in range(1, 4):
            tab = [(4**m * tab[k + 1] - tab[k]) / (4**m - 1) for k in range(len(tab) - 1)]
        J[:, i] = tab[0]
    return J


def satterthwaite(model: NestedLMM, varpar: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each row of ``L`` (lmerTest's contest1D), at ``varpar``."""
    H = _hessian(model.deviance_vp, varpar)
    try:
        A = 2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.full(L.shape[0], np.nan)
    C = model.vcov_vp(varpar)
    p = C.shape[0]
    J = _jacobian(model.vcov_vp, varpar).reshape(p, p, len(varpar))
    out = np.empty(L.shape[0])
    for k, ell in enumerate(L):
        v = float(ell @ C @ ell)
        g = np.einsum("i,ijm,j->m", ell, J, ell)
        out[k] = 2 * v**2 / float(g @ A @ g)
    return out
