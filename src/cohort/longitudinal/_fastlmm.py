"""Profiled (RE)ML for one grouping factor with few random effects per group.

The model is ``y = X b + Z u + e`` with ``u_g ~ N(0, s2 L L')`` per group and
``e ~ N(0, s2 I)``; ``L`` is lower triangular (the relative covariance factor,
parameterised by ``theta`` in lme4's column-wise order). Everything the profiled
deviance and its exact gradient need reduces to per-group sufficient statistics
``Z'Z``, ``Z'X`` and ``Z'y`` (tiny dense blocks), handled for all groups at once
with the group index on the last axis (vectorised small Cholesky factors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

LOG2PI = float(np.log(2 * np.pi))


def _segment_sum(codes: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=n_groups)


@dataclass
class Eval:
    """The profiled deviance at one theta, with what the gradient and results need."""

    dev: float
    grad: np.ndarray
    r2: float
    beta: np.ndarray  # fixed effects for the centred response
    A: np.ndarray  # X' V0^-1 X
    A_inv: np.ndarray
    g_ld: np.ndarray
    g_r2: np.ndarray
    g_la: np.ndarray
    E: np.ndarray | None = None  # (q, q, G): Lambda T^-1 Lambda'
    P: np.ndarray | None = None  # (q, p, G): Z' W X per group
    lam: np.ndarray | None = None


class FastLMM:
    """Sufficient statistics and the deviance function of one model."""

    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        Z: np.ndarray,
        codes: np.ndarray,
        n_groups: int,
        *,
        reml: bool,
        diagonal: bool,
    ) -> None:
        n, p = X.shape
        q = Z.shape[1]
        # work with unit-RMS random-effect columns: theta = (1, 0, 1) is then a sensible start
        # whatever the units of time (Lambda_user = Lambda / zscale row-wise keeps it triangular)
        zscale = np.sqrt(np.mean(Z**2, axis=0))
        zscale[zscale == 0] = 1.0
        self.zscale = zscale
        Z = Z / zscale
        self.n, self.p, self.q, self.G = n, p, q, n_groups
        self.reml = reml
        # centre the response on its OLS fit: the model is invariant to y -> y - X b0 and the
        # residual sums of squares no longer cancel catastrophically
        self.beta0, *_ = np.linalg.lstsq(X, y, rcond=None)
        e = y - X @ self.beta0
        self.XtX = X.T @ X
        self.Xty = X.T @ e
        self.yty = float(e @ e)
        G = n_groups
        S = np.empty((q, q, G))
        for a in range(q):
            for b in range(a, q):
                S[a, b] = S[b, a] = _segment_sum(codes, Z[:, a] * Z[:, b], G)
        ZX = np.empty((q, p, G))
        for a in range(q):
            for j in range(p):
                ZX[a, j] = _segment_sum(codes, Z[:, a] * X[:, j], G)
        Zy = np.empty((q, G))
        for a in range(q):
            Zy[a] = _segment_sum(codes, Z[:, a] * e, G)
        self.S, self.ZX, self.Zy = S, ZX, Zy
        if diagonal:
            pos = [(j, j) for j in range(q)]
        else:
            pos = [(i, j) for j in range(q) for i in range(j, q)]
        self.pos = pos
        self.rows = np.array([r for r, _ in pos])
        self.cols = np.array([c for _, c in pos])
        self.lower = np.array([0.0 if r == c else -np.inf for r, c in pos])
        self.ntheta = len(pos)

    # -- building blocks ------------------------------------------------------------------
    def lam(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        return lam

    def user_lambda(self, theta: np.ndarray) -> np.ndarray:
        """Relative covariance factor for the random-effect columns as given by the user."""
        return self.lam(theta) / self.zscale[:, None]

    def theta0(self) -> np.ndarray:
        return np.where(self.rows == self.cols, 1.0, 0.0)

    def _factor(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (E, logdet T) with T_g = Lam' S_g Lam + I and E_g = Lam T_g^-1 Lam'."""
        q = self.q
        LS = np.einsum("ba,bcg->acg", lam, self.S)
        T = np.einsum("acg,cd->adg", LS, lam)
        for j in range(q):
            T[j, j] += 1.0
        L = np.zeros_like(T)
        logdet = 0.0
        for j in range(q):
            s = T[j, j] - np.sum(L[j, :j] ** 2, axis=0)
            L[j, j] = np.sqrt(s)
            logdet += 2.0 * float(np.sum(np.log(L[j, j])))
            for i in range(j + 1, q):
                L[i, j] = (T[i, j] - np.sum(L[i, :j] * L[j, :j], axis=0)) / L[j, j]
        # Y = L^-1 Lam' (q, q, G) by forward substitution
        Y = np.empty_like(T)
        lt = lam.T
        for i in range(q):
            acc = np.broadcast_to(lt[i][:, None], (q, self.G)).copy()
            for k in range(i):
                acc -= L[i, k] * Y[k]
            Y[i] = acc / L[i, i]
        E = np.einsum("iag,ibg->abg", Y, Y)
        return E, logdet

    def evaluate(self, theta: np.ndarray, *, keep: bool = False) -> Eval:
        lam = self.lam(np.asarray(theta, dtype=float))
        E, ld = self._factor(lam)
        S, ZX, Zy = self.S, self.ZX, self.Zy
        EZX = np.einsum("abg,bpg->apg", E, ZX)
        EZy = np.einsum("abg,bg->ag", E, Zy)
        A = self.XtX - np.einsum("apg,arg->pr", ZX, EZX)
        r = self.Xty - np.einsum("apg,ag->p", ZX, EZy)
        yWy = self.yty - float(np.einsum("ag,ag->", Zy, EZy))
        cA = np.linalg.cholesky(A)
        beta = np.linalg.solve(A, r)
        r2 = yWy - float(r @ beta)
        lda = 2.0 * float(np.sum(np.log(np.diag(cA))))
        A_inv = np.linalg.inv(A)
        # per-group Z'WZ, Z'WX and Z'W(y - X beta)
        SE = np.einsum("abg,bcg->acg", S, E)
        M_sum = np.sum(S, axis=2) - np.einsum("abg,bcg->ac", SE, S)
        P = ZX - np.einsum("abg,bpg->apg", S, EZX)
        w = Zy - np.einsum("abg,bg->ag", S, EZy)
        u = w - np.einsum("apg,p->ag", P, beta)
        UU = np.einsum("ag,bg->ab", u, u)
        PAP = np.einsum("apg,pr,brg->ab", P, A_inv, P)
        rr, cc = self.rows, self.cols
        g_ld = 2.0 * (M_sum @ lam)[rr, cc]
        g_r2 = -2.0 * (UU @ lam)[rr, cc]
        g_la = -2.0 * (PAP @ lam)[rr, cc]
        n, p = self.n, self.p
        if self.reml:
            dof = n - p
            dev = ld + lda + dof * (1.0 + np.log(2 * np.pi * r2 / dof))
            grad = g_ld + g_la + dof * g_r2 / r2
        else:
            dev = ld + n * (1.0 + np.log(2 * np.pi * r2 / n))
            grad = g_ld + n * g_r2 / r2
        ev = Eval(float(dev), grad, r2, beta, A, A_inv, g_ld, g_r2, g_la)
        if keep:
            ev.E, ev.P, ev.lam = E, P, lam
        return ev

    def dof(self) -> int:
        return self.n - self.p if self.reml else self.n

    # -- fitting --------------------------------------------------------------------------
    def hessian(self, theta: np.ndarray, grad_fn, h: float = 1e-5) -> np.ndarray:
        k = len(theta)
        H = np.empty((k, k))
        for j in range(k):
            step = h * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += step
            tm[j] -= step
            H[:, j] = (grad_fn(tp) - grad_fn(tm)) / (2 * step)
        return 0.5 * (H + H.T)

    def _optimise(self, x0: np.ndarray, tol: float, max_newton: int) -> dict:
        scale = float(self.n)

        def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
            ev = self.evaluate(th)
            return ev.dev / scale, ev.grad / scale

        bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lower]
        res = optimize.minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20},
        )
        theta = np.asarray(res.x, dtype=float)
        n_eval = int(res.nfev)
        # Newton polish on the free parameters: theta tight to ~1e-10
        newton_steps = 0
        step_size = np.inf
        for _ in range(max_newton):
            ev = self.evaluate(theta)
            at_bound = (theta <= self.lower) & (ev.grad >= 0)
            free = ~at_bound
            if not free.any():
                step_size = 0.0
                break
            H_full = self.hessian(theta, lambda t: self.evaluate(t).grad)
            self._hess_cache = (theta.copy(), H_full)
            H = H_full[np.ix_(free, free)]
            n_eval += 2 * len(theta)
            try:
                np.linalg.cholesky(H)
                step = np.linalg.solve(H, ev.grad[free])
            except np.linalg.LinAlgError:
                break
            t = 1.0
            improved = False
            while t > 1e-6:
                cand = theta.copy()
                cand[free] -= t * step
                cand = np.maximum(cand, self.lower)
                new = self.evaluate(cand)
                n_eval += 1
                if new.dev <= ev.dev + 1e-12 * abs(ev.dev):
                    improved = True
                    break
                t /= 2
            if not improved:
                break
            step_size = float(np.max(np.abs(cand - theta)))
            theta = cand
            newton_steps += 1
            if step_size < tol:
                break
        return {
            "theta": theta,
            "dev": self.evaluate(theta).dev,
            "optimizer_message": str(res.message),
            "n_eval": n_eval,
            "newton_steps": newton_steps,
            "last_step": step_size,
        }

    def fit(self, *, tol: float = 1e-10, max_newton: int = 25) -> dict:
        """Minimise the profiled deviance; restart from inside when it stops on the boundary."""
        best = self._optimise(self.theta0(), tol, max_newton)
        n_eval = best["n_eval"]
        starts = 1
        diag = self.rows == self.cols
        if np.any(best["theta"][diag] <= 0):
            for shrink in (0.1, 0.5):
                x0 = best["theta"].copy()
                x0[diag & (x0 <= 0)] = shrink
                cand = self._optimise(x0, tol, max_newton)
                n_eval += cand["n_eval"]
                starts += 1
                if cand["dev"] < best["dev"] - 1e-9 * max(1.0, abs(best["dev"])):
                    best = cand
        return {**best, "n_eval": n_eval, "starts": starts}

    def check(self, theta: np.ndarray) -> dict:
        """Gradient, Hessian and boundary checks at the optimum (as lme4's checkConv)."""
        ev = self.evaluate(theta)
        at_bound = (theta <= self.lower) & (ev.grad >= 0)
        free = ~at_bound
        out = {"grad": ev.grad, "at_bound": at_bound, "hessian_pd": True, "scaled_grad": 0.0}
        if free.any():
            cached = getattr(self, "_hess_cache", None)
            if cached is not None and np.max(np.abs(cached[0] - theta)) < 1e-7:
                H_full = cached[1]
            else:
                H_full = self.hessian(theta, lambda t: self.evaluate(t).grad)
            H = H_full[np.ix_(free, free)]
            eig = np.linalg.eigvalsh(H)
            out["hessian_pd"] = bool(eig.min() > 1e-8 * max(1.0, abs(eig.max())))
            try:
                out["scaled_grad"] = float(np.max(np.abs(np.linalg.solve(H, ev.grad[free]))))
            except np.linalg.LinAlgError:
                out["scaled_grad"] = np.inf
        return out

    # -- Satterthwaite (as lmerTest) -----------------------------------------------------------
    def satterthwaite(self, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Degrees of freedom for each fixed effect and the covariance of (theta, sigma)."""
        notes: list[str] = []
        s2 = sigma**2
        ndof = self.dof()

        def grad_theta(th: np.ndarray) -> np.ndarray:
            ev = self.evaluate(th)
            g = ev.g_ld + ev.g_r2 / s2
            return g + ev.g_la if self.reml else g

        ev = self.evaluate(theta, keep=True)
        k = len(theta)
        H = np.empty((k + 1, k + 1))
        H[:k, :k] = self.hessian(theta, grad_theta)
        H[:k, k] = H[k, :k] = -2.0 * ev.g_r2 / sigma**3
        H[k, k] = 6.0 * ev.r2 / sigma**4 - 2.0 * ndof / s2
        vals, vecs = np.linalg.eigh(H)
        tol = 1e-8
        if np.any(vals < -tol):
            notes.append("Satterthwaite: the Hessian of the deviance has negative eigenvalues")
        if np.any(np.abs(vals) <= tol):
            notes.append("Satterthwaite: the Hessian of the deviance has an eigenvalue close to zero")
        pos = vals > tol
        vcov_vp = 2.0 * (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
        A_inv, P, lam = ev.A_inv, ev.P, ev.lam
        assert P is not None and lam is not None
        LtP = np.einsum("ba,bpg->apg", lam, P)
        jac = np.empty((k + 1, self.p, self.p))
        for j, (r, c) in enumerate(self.pos):
            Q = np.einsum("pg,rg->pr", P[r], LtP[c])
            dA = -(Q + Q.T)
            jac[j] = -s2 * A_inv @ dA @ A_inv
        jac[k] = 2.0 * sigma * A_inv
        C = s2 * A_inv
        dfs = np.empty(self.p)
        for j in range(self.p):
            gj = jac[:, j, j]
            denom = float(gj @ vcov_vp @ gj)
            dfs[j] = 2.0 * C[j, j] ** 2 / denom if denom > 0 else np.inf
        return dfs, vcov_vp, notes
