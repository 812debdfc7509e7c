"""Fast exact Cox partial-likelihood engine on NumPy arrays (Efron and Breslow ties).

Works on (start, stop] counting-process data (right-censored data has start
= -inf), strata and case weights. One sort at set-up; every Newton iteration
is a handful of O(n p) passes: risk-set sums by reverse cumulative sums over
the sorted stop (and start) times, tie corrections by per-event scalars, and
the second-derivative term ``sum_g c_g S2_g`` folded into per-subject scalar
weights so that no per-event p x p array is ever built.

Notation: for each tie group g (distinct event time within a stratum) with
d_g events, Efron's k-th denominator is ``S0_g - (k/d_g) S0D_g`` where S0D is
the risk sum over the tied events; Breslow uses k = 0 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoxData", "NewtonResult", "newton_raphson"]

MAX_HALVINGS = 60  # step halvings per Newton iteration before the fit is reported as not converged


def _revcumsum(a: np.ndarray) -> np.ndarray:
    """r[i] = sum(a[i:]) along axis 0, with an extra trailing zero row."""
    out = np.empty((a.shape[0] + 1,) + a.shape[1:], dtype=np.float64)
    out[-1] = 0.0
    out[:-1] = np.cumsum(a[::-1], axis=0)[::-1]
    return out


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """c[i] = sum(a[:i]) along axis 0 (leading zero row)."""
    out = np.empty((a.shape[0] + 1,) + a.shape[1:], dtype=np.float64)
    out[0] = 0.0
    np.cumsum(a, axis=0, out=out[1:])
    return out


# Tall-skinny products without BLAS: OpenBLAS worker threads spinning between calls
# made whole fits 1.5-9x slower on a shared 2-core machine; these loops are as fast
# single-threaded and behave the same under load.
def _matvec(X: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = X[:, 0] * b[0]
    for j in range(1, X.shape[1]):
        out += X[:, j] * b[j]
    return out


def _tmatvec(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.array([np.einsum("i,i->", X[:, j], v) for j in range(X.shape[1])])


def _wgram(A: np.ndarray, w: np.ndarray, B: np.ndarray | None = None, step: int = 65536) -> np.ndarray:
    """A' diag(w) B in row chunks that stay in cache."""
    B = A if B is None else B
    out = np.zeros((A.shape[1], B.shape[1]))
    for i in range(0, A.shape[0], step):
        out += np.einsum("ij,ik->jk", A[i : i + step] * w[i : i + step, None], B[i : i + step])
    return out


class CoxData:
    """Sorted risk-set structure of one Cox problem, built once and reused by every iteration.

    Parameters
    ----------
    X : (n, p) float array of covariates.
    stop : (n,) stop (or follow-up) times.
    event : (n,) bool.
    start : (n,) entry times, or None for right-censored data.
    strata : (n,) integer codes, or None.
    weights : (n,) case weights, or None.
    ties : "efron" or "breslow".
    offset : (n,) terms added to the linear predictor with coefficient 1 (R's
        ``offset()``), or None. It is centred (the partial likelihood does not change
        when a constant is added to every row's linear predictor).
    """

    def __init__(
        self,
        X: np.ndarray,
        stop: np.ndarray,
        event: np.ndarray,
        *,
        start: np.ndarray | None = None,
        strata: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        ties: str = "efron",
        offset: np.ndarray | None = None,
    ) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        n, p = X.shape
        self.n, self.p = n, p
        event = np.asarray(event, dtype=bool)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.unit_weights = weights is None or bool(np.all(w == 1.0))
        self.efron = ties == "efron"
        self.counting = start is not None
        stop = np.asarray(stop, dtype=np.float64)
        s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
        # integer time ranks (0 reserved for "-inf" = no delayed entry), combined with strata
        if start is None:
            uniq, stop_r = np.unique(stop, return_inverse=True)
            stop_r = stop_r + 1
            start_r = np.zeros(n, dtype=np.int64)
        else:
            start = np.asarray(start, dtype=np.float64)
            uniq, inv = np.unique(np.concatenate([stop, start]), return_inverse=True)
            stop_r, start_r = inv[:n] + 1, inv[n:] + 1
        span = uniq.size + 2
        self.span = span
        key_stop = s * span + stop_r
        # one sort: the event rows first, by (stratum, time); then the others.
        # Every per-event quantity is then a slice [:m] and tie groups are contiguous.
        perm = np.argsort(np.where(event, key_stop, key_stop + (int(s.max(initial=0)) + 2) * span), kind="stable")
        self.perm = perm
        self.m = m = int(event.sum())
        self.event = event[perm]
        self.w = w[perm]
        self.strata = s[perm]
        self.key_stop = key_stop[perm]
        self.key_start = (s * span + start_r)[perm]
        self.stratum_end = (self.strata + 1) * span
        # column-major: each covariate is contiguous (the per-column risk sums read it)
        Xp = np.empty((n, p), order="F")
        for j in range(p):
            col = X[:, j][perm]
            Xp[:, j] = col - col.mean()
        self.means = X.mean(axis=0) if n else np.zeros(p)
        off = None if offset is None else np.asarray(offset, dtype=np.float64)[perm]
        self.offset = None if off is None or not n else off - off.mean()
        self.X = Xp
        self.Xf = Xp
        ev_keys = self.key_stop[:m]
        self.ev_idx = np.arange(m)
        gkeys, gstart, dcount = np.unique(ev_keys, return_index=True, return_counts=True)
        self.gkeys = gkeys
        self.gstart = gstart
        self.G = gkeys.size
        self.ev_group = np.repeat(np.arange(self.G), dcount)
        self.d = dcount.astype(np.float64)
        k = np.arange(m) - np.repeat(gstart, dcount)
        self.frac = (k / self.d[self.ev_group]) if self.efron else np.zeros(m)
        self.group_stratum = gkeys // span
        self.group_time = uniq[(gkeys % span) - 1] if self.G else np.zeros(0)
        # per subject: groups with start < t_g <= stop (same stratum) are [c_lo, c_hi)
        self.c_hi = np.searchsorted(gkeys, self.key_stop, side="right")
        self.c_lo = np.searchsorted(gkeys, self.key_start, side="right")
        self.need_lo = bool(self.counting or (self.G and self.c_lo.any()))
        self.wev = self.w[:m]
        self.wD = self._gsum(self.wev)
        self.meanwt = self.wD / np.maximum(self.d, 1)
        self.meanwt_ev = self.meanwt[self.ev_group]
        self.Xw_ev = _tmatvec(self.X[:m], self.wev) if p else np.zeros(0)

    def _gsum(self, vals: np.ndarray) -> np.ndarray:
        """Sum per tie group of per-event values (events are contiguous by group)."""
        if self.G == 0:
            return np.zeros((0,) + vals.shape[1:])
        return np.add.reduceat(vals, self.gstart, axis=0)

    def unpermute(self, rows: np.ndarray) -> np.ndarray:
        """Put per-row results back in the caller's row order."""
        out = np.empty_like(rows)
        out[self.perm] = rows
        return out

    # ---- risk-set sums ------------------------------------------------------------
    def _risk_sums(self, vals: np.ndarray) -> np.ndarray:
        """sum over {start < t_g <= stop, same stratum} of vals, per group.

        Row i is in the risk sets of groups c_lo[i] <= g < c_hi[i], so the sum for
        g is (sum of rows with c_hi > g) - (sum of rows with c_lo > g): two
        bincounts and reverse cumulative sums over the groups, no sorting.
        """
        G = self.G

        def tail(idx: np.ndarray, v: np.ndarray) -> np.ndarray:
            c = np.bincount(idx, weights=v, minlength=G + 1)
            return np.cumsum(c[::-1])[::-1][1:]  # sum over bins > g

        if vals.ndim == 1:
            out = tail(self.c_hi, vals)
            if self.need_lo:
                out = out - tail(self.c_lo, vals)
            return out
        out = np.empty((G, vals.shape[1]))
        for j in range(vals.shape[1]):
            col = vals[:, j]
            out[:, j] = tail(self.c_hi, col)
            if self.need_lo:
                out[:, j] -= tail(self.c_lo, col)
        return out

    def _subject_cum(self, per_group: np.ndarray) -> np.ndarray:
        """For each row, the sum of per_group over the groups whose risk set holds it."""
        c = _cumsum0(per_group)
        if self.need_lo:
            return c[self.c_hi] - c[self.c_lo]
        return c[self.c_hi]

    def evaluate(self, beta: np.ndarray, *, second: bool = True) -> dict:
        """Log partial likelihood, score and information at ``beta``."""
        X = self.X
        eta = _matvec(X, beta) if self.p else np.zeros(self.n)
        if self.offset is not None:
            eta = eta + self.offset
        r = np.exp(eta)
        if not self.unit_weights:
            r *= self.w
        S0 = self._risk_sums(r)
        Xf = self.Xf
        S1 = np.empty((self.G, self.p))
        for j in range(self.p):
            S1[:, j] = self._risk_sums(Xf[:, j] * r)
        eg = self.ev_group
        m_ = self.m
        ri = r[:m_]
        S0D = self._gsum(ri)
        S1D = self._gsum(X[:m_] * ri[:, None])
        den = S0[eg] - self.frac * S0D[eg]
        m = self.meanwt_ev
        loglik = float(np.einsum("i,i->", self.wev, eta[:m_]) - np.einsum("i,i->", m, np.log(den)))
        h = m / den
        A = self._gsum(h)
        B = self._gsum(h * self.frac)
        coef = self._subject_cum(A)
        coef[:m_] -= B[eg]
        rc = r * coef
        score = self.Xw_ev - _tmatvec(X, rc)
        out = {"loglik": loglik, "score": score, "eta": eta, "r": r, "S0": S0, "S1": S1, "S0D": S0D,
               "S1D": S1D, "den": den, "h": h, "A": A, "B": B}
        if second:
            out["info"] = self.information(out)
        return out

    def information(self, ev: dict, group_mult: np.ndarray | None = None) -> np.ndarray:
        """Observed information sum_g mult_g * I_g (mult = 1 gives the usual matrix)."""
        eg = self.ev_group
        h, m = ev["h"], self.meanwt_ev
        A, B = ev["A"], ev["B"]
        q = h * h / m
        alpha = self._gsum(q)
        if self.efron:
            qf = q * self.frac
            beta_ = self._gsum(qf)
            gamma = self._gsum(qf * self.frac)
        else:
            beta_ = gamma = np.zeros(self.G)
        if group_mult is not None:
            A, B = A * group_mult, B * group_mult
            alpha, beta_, gamma = alpha * group_mult, beta_ * group_mult, gamma * group_mult
        coef = self._subject_cum(A)
        coef[: self.m] -= B[eg]
        X = self.X
        first = _wgram(X, ev["r"] * coef)
        S1, S1D = ev["S1"], ev["S1D"]
        second = _wgram(S1, alpha)
        if self.efron:
            cross = _wgram(S1, beta_, S1D)
            second = second - cross - cross.T + _wgram(S1D, gamma)
        info = first - second
        return (info + info.T) / 2

    def score_residuals(self, beta: np.ndarray, ev: dict | None = None) -> np.ndarray:
        """Per-row score residuals (unweighted, caller's row order), as R's residuals(fit, type="score")."""
        if ev is None:
            ev = self.evaluate(beta, second=False)
        eg = self.ev_group
        X = self.X
        h, den = ev["h"], ev["den"]
        xbar = (ev["S1"][eg] - self.frac[:, None] * ev["S1D"][eg]) / den[:, None]
        XH1 = self._gsum(h[:, None] * xbar)
        XH2 = self._gsum(((1 - self.frac) * h)[:, None] * xbar)
        xbar_mean = self._gsum(xbar) / self.d[:, None]
        A, B = ev["A"], ev["B"]
        rh = self._subject_cum(A)
        c = _cumsum0(XH1)
        rxh = c[self.c_hi] - c[self.c_lo]
        ei = slice(0, self.m)
        rh[ei] -= B[eg]
        rxh[ei] -= XH1[eg] - XH2[eg]
        risk = np.exp(ev["eta"])
        resid = -risk[:, None] * (X * rh[:, None] - rxh)
        resid[ei] += X[ei] - xbar_mean[eg]
        return self.unpermute(resid)

    def null_loglik(self) -> float:
        return self.evaluate(np.zeros(self.p), second=False)["loglik"] if self.p else self._loglik0()

    def _loglik0(self) -> float:
        r = self.w.copy()
        S0 = self._risk_sums(r)
        eg = self.ev_group
        S0D = self._gsum(r[: self.m])
        den = S0[eg] - self.frac * S0D[eg]
        return float(-np.einsum("i,i->", self.meanwt_ev, np.log(den)))


@dataclass
class NewtonResult:
    beta: np.ndarray
    loglik: float
    info: np.ndarray
    score: np.ndarray
    iterations: int
    converged: bool
    messages: list[str]
    ev: dict
    diverging: list[int]


def newton_raphson(
    data: CoxData,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-12,
    first: dict | None = None,
) -> NewtonResult:
    """Maximise the partial likelihood by Newton-Raphson with step halving (as R's coxph).

    Convergence: relative change of the log-likelihood <= tol and the Newton
    step below 1e-8 in every coordinate (relative to max(1, |beta|)). Every loop
    is bounded: at most ``max_iter`` iterations of at most ``MAX_HALVINGS`` step
    halvings; a non-finite step or log-likelihood stops the fit with
    ``converged=False`` and a message saying why. Infinite
    estimates (monotone likelihood, separation) are flagged in ``messages``.
    ``first`` is ``data.evaluate(init)`` when the caller already has it.
    """
    p = data.p
    beta = np.zeros(p) if init is None else np.asarray(init, dtype=float).copy()
    messages: list[str] = []
    diverging_idx: list[int] = []
    ev = data.evaluate(beta) if first is None else first
    loglik = ev["loglik"]
    rel = float("nan")
    converged = False
    it = 0
    halvings = 0
    step = np.zeros(p)
    stalled = ""
    if not np.isfinite(loglik):
        stalled = "the log-likelihood is not finite at the initial values"
        max_iter = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        info = ev["info"]
        try:
            chol = np.linalg.cholesky(info)
            step = np.linalg.solve(chol.T, np.linalg.solve(chol, ev["score"]))
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, ev["score"], rcond=None)[0]
        if not np.all(np.isfinite(step)):
            stalled = "the Newton step is not finite (singular or undefined information matrix)"
            break
        new_beta = beta + step
        new_ev = data.evaluate(new_beta, second=False)
        new_ll = new_ev["loglik"]
        tries = 0
        while not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * max(1.0, abs(loglik)):
            tries += 1
            halvings += 1
            if tries > MAX_HALVINGS or np.max(np.abs(step)) < 1e-12:
                break
            step = step / 2
            new_beta = beta + step
            new_ev = data.evaluate(new_beta, second=False)
            new_ll = new_ev["loglik"]
        if not np.isfinite(new_ll):
            stalled = f"the log-likelihood is not finite near the estimate after {tries} step halvings"
            break
        rel = abs(new_ll - loglik) / max(abs(new_ll), 1e-300)
        new_ev["info"] = data.information(new_ev)
        beta, ev, loglik = new_beta, new_ev, new_ll
        small = np.all(np.abs(step) <= 1e-8 * np.maximum(1.0, np.abs(beta)))
        if rel <= tol and small:
            converged = True
            break
        if rel <= 1e-15 and np.max(np.abs(step)) < 1e-12:
            converged = True
            break
    info = ev["info"]
    if p and not stalled:
        try:
            nxt = np.linalg.solve(info, ev["score"])
        except np.linalg.LinAlgError:
            nxt = np.full(p, np.inf)
        diverging = (np.abs(nxt) > 1e-4 * np.maximum(1.0, np.abs(beta))) & (np.abs(beta) > 5)
        cond = np.linalg.cond(info) if np.all(np.isfinite(info)) else np.inf
        if diverging.any() or not np.all(np.isfinite(beta)) or cond > 1e14:
            converged = False
            idx = np.flatnonzero(diverging | ~np.isfinite(beta)) if diverging.any() else np.arange(p)
            messages.append(
                "monotone likelihood: the estimate(s) of {cols} tend to infinity "
                "(separation: e.g. no events in one group, or a covariate that orders the "
                "event times perfectly); the coefficients and standard errors are not usable"
            )
            diverging_idx = [int(i) for i in idx]
    if stalled:
        converged = False
        messages.insert(0, f"Newton-Raphson stopped at iteration {it}: {stalled}; the estimates are not usable")
    if not converged and not messages:
        messages.append(
            f"Newton-Raphson did not converge in {max_iter} iterations "
            f"(last relative log-likelihood change {rel:.2e}); raise max_iter or check the model"
        )
    return NewtonResult(beta=beta, loglik=loglik, info=info, score=ev["score"], iterations=it,
                        converged=converged, messages=messages, ev=ev, diverging=diverging_idx)
