"""GEE estimation as ``geepack::geeglm`` (geese.fit / gee2.cc), in NumPy.

geepack's algorithm (Yan & Fine 2004; Halekoh, Hojsgaard and Yan 2006), reproduced step by step
so that the same data give the same numbers, including where geepack stops iterating:

* start: ``glm.fit`` coefficients (IRLS as R's ``glm``), correlation parameters 0, scale the mean
  of the squared Pearson residuals at the start;
* each iteration, in this order: one Fisher-scoring step for beta with the working correlation
  R(alpha) (the scale cancels); Pearson residuals at the new beta; the scale as the mean of the
  squared Pearson residuals (denominator N, no subtraction of p); one Gauss-Newton step for
  alpha on ``z_ijk = e_ij e_ik / phi`` over *all* within-cluster pairs, against
  ``rho_jk(alpha)``: exchangeable ``alpha``, AR-1 ``alpha ** |w_j - w_k|`` (waves), unstructured
  ``alpha_{w_j w_k}``;
* stop when the largest absolute change of beta, scale and alpha is <= ``tol`` (1e-4), at most
  ``maxiter`` (25) iterations;
* sandwich and naive (model-based) covariance at the final values, with
  ``V_i = phi^{1/2} R_i phi^{1/2}``.

Exchangeable and unstructured steps are exact moment estimators (mean of ``z`` over all pairs,
or over the pairs of each pair of waves); the AR-1 step solves, at convergence,
``sum d alpha^(d-1) (z - alpha^d) = 0`` over all pairs (``d`` the wave distance), which is why
it differs from the lag-1 moment estimator.

Clusters are padded to the largest size so that every step is a batched linear solve; a padded
position has a zero design row, zero residual and an identity block in R, so it adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GeeFit", "fit_geepack", "glm_start", "Clusters"]

_EPS = np.finfo(float).eps
_THRESH = -np.log(_EPS)  # geepack's / R's logit clamp
_CHUNK = 20_000  # clusters per batched solve


# ---------------------------------------------------------------- family (geepack famstr.cc)
def _linkinv(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return eta.copy()
    if family == "poisson":
        return np.maximum(_EPS, np.exp(eta))
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    return e / (1 + e)


def _mu_eta(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return np.ones_like(eta)
    if family == "poisson":
        return np.maximum(_EPS, np.exp(eta))
    with np.errstate(over="ignore"):
        e = np.exp(eta)
        out = e / (1 + e) ** 2
    return np.where(np.abs(eta) >= _THRESH, _EPS, out)


def _variance(family: str, mu: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return np.ones_like(mu)
    if family == "poisson":
        return mu
    return mu * (1 - mu)


# ---------------------------------------------------------------- start values (R glm.fit)
def _r_linkinv(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return eta.copy()
    if family == "poisson":
        return np.maximum(np.exp(eta), _EPS)
    # R's C_logit_linkinv
    t = np.where(eta < -30, _EPS, np.where(eta > 30, 1 / _EPS, np.exp(np.clip(eta, -30, 30))))
    return t / (1 + t)


def _r_mu_eta(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return np.ones_like(eta)
    if family == "poisson":
        return np.maximum(np.exp(eta), _EPS)
    e = np.exp(np.clip(eta, -30, 30))
    return np.where((eta > 30) | (eta < -30), _EPS, e / (1 + e) ** 2)


def _deviance(family: str, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    if family == "gaussian":
        return float(np.sum(w * (y - mu) ** 2))
    if family == "poisson":
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y > 0, y * np.log(y / mu), 0.0)
        return float(2 * np.sum(w * (t - (y - mu))))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2 * np.sum(w * (a + b)))


def glm_start(
    y: np.ndarray, X: np.ndarray, family: str, *, maxit: int = 25, epsilon: float = 1e-8,
    offset: np.ndarray | None = None, weights: np.ndarray | None = None,
) -> np.ndarray:
    """Coefficients of R's ``glm.fit`` (same start, IRLS steps and stopping rule; ``offset`` and
    prior ``weights`` as R's: a zero weight leaves the row out of the IRLS fit)."""
    off = np.zeros(len(y)) if offset is None else offset
    pw = np.ones(len(y)) if weights is None else weights
    if family == "gaussian":
        r = np.sqrt(pw)
        return np.linalg.lstsq(X * r[:, None], (y - off) * r, rcond=None)[0]
    mustart = (pw * y + 0.5) / (pw + 1) if family == "binomial" else y + 0.1
    eta = np.log(mustart / (1 - mustart)) if family == "binomial" else np.log(mustart)
    mu = _r_linkinv(family, eta)
    devold = _deviance(family, y, mu, pw)
    coef = np.zeros(X.shape[1])
    for _ in range(maxit):
        me = _r_mu_eta(family, eta)
        var = _variance(family, mu)
        z = eta - off + (y - mu) / me
        w = np.sqrt(pw * me**2 / var)
        coef = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)[0]
        eta = X @ coef + off
        mu = _r_linkinv(family, eta)
        dev = _deviance(family, y, mu, pw)
        if abs(dev - devold) / (abs(dev) + 0.1) < epsilon:
            break
        devold = dev
    return coef


# ---------------------------------------------------------------- cluster layout
@dataclass(frozen=True)
class Clusters:
    """Rows grouped in contiguous clusters, padded to the largest cluster size."""

    sizes: np.ndarray  # (K,)
    index: np.ndarray  # (K, m) row index, -1 where padded
    mask: np.ndarray  # (K, m) bool
    waves: np.ndarray  # (N,) int wave codes 1..L
    nwaves: int
    pair_j: np.ndarray  # row index of the first member of each within-cluster pair (j < k by position)
    pair_k: np.ndarray
    pair_d: np.ndarray  # |w_j - w_k|
    pair_param: np.ndarray  # unstructured parameter index of the pair of waves (upper triangle, row-wise)

    @classmethod
    def build(cls, sizes: np.ndarray, waves: np.ndarray | None = None) -> Clusters:
        sizes = np.asarray(sizes, dtype=np.int64)
        n = int(sizes.sum())
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        m = int(sizes.max())
        pos = np.arange(m)
        mask = pos[None, :] < sizes[:, None]
        index = np.where(mask, first[:, None] + pos[None, :], -1)
        if waves is None:
            waves = (np.arange(n) - np.repeat(first, sizes) + 1).astype(np.int64)
        waves = np.asarray(waves, dtype=np.int64)
        nwaves = int(waves.max())
        pj, pk = [], []
        for s in np.unique(sizes):
            if s < 2:
                continue
            a, b = np.triu_indices(int(s), 1)
            f = first[sizes == s]
            pj.append((f[:, None] + a[None, :]).ravel())
            pk.append((f[:, None] + b[None, :]).ravel())
        pair_j = np.concatenate(pj) if pj else np.zeros(0, np.int64)
        pair_k = np.concatenate(pk) if pk else np.zeros(0, np.int64)
        wj, wk = waves[pair_j], waves[pair_k]
        lo, hi = np.minimum(wj, wk), np.maximum(wj, wk)
        # index of (lo, hi) in the row-wise upper triangle of an nwaves x nwaves matrix
        param = (lo - 1) * nwaves - (lo - 1) * lo // 2 + (hi - lo) - 1
        return cls(sizes, index, mask, waves, nwaves, pair_j, pair_k, np.abs(wj - wk), param)


# ---------------------------------------------------------------- working correlation
def _chunks(cl: Clusters) -> list[slice]:
    K = len(cl.sizes)
    return [slice(a, min(K, a + _CHUNK)) for a in range(0, K, _CHUNK)]


def _lookup(cl: Clusters, corstr: str, rows: slice) -> np.ndarray:
    """Codes into the table of :func:`_table` giving R_i for clusters ``rows`` (k, m, m).

    Padded positions get the identity: 1 on the diagonal, 0 elsewhere.
    """
    idx, mask = cl.index[rows], cl.mask[rows]
    k, m = idx.shape
    both = mask[:, :, None] & mask[:, None, :]
    eye = np.eye(m, dtype=bool)[None, :, :]
    w = np.where(mask, cl.waves[np.maximum(idx, 0)], 1).astype(np.int32) - 1
    L = cl.nwaves
    if corstr == "exchangeable":
        code = np.where(both, 1, 2)
        pad_off, diag = 2, 0
    elif corstr == "ar1":
        code = np.abs(w[:, :, None] - w[:, None, :])
        pad_off, diag = L, 0
    else:  # unstructured: flat index of (w_j, w_k) in the L x L matrix
        code = w[:, :, None] * L + w[:, None, :]
        pad_off, diag = L * L, L * L + 1
    code = np.where(both, code, pad_off)
    return np.where(eye, diag, code).astype(np.int32)


def _table(corstr: str, alpha: np.ndarray, L: int) -> np.ndarray:
    if corstr == "exchangeable":
        return np.array([1.0, alpha[0], 0.0])
    if corstr == "ar1":
        return np.r_[np.power(alpha[0], np.arange(L, dtype=float)), 0.0]
    full = np.eye(L)
    iu = np.triu_indices(L, 1)
    full[iu] = alpha
    full.T[iu] = alpha
    return np.r_[full.ravel(), 0.0, 1.0]


def _cluster_solve(cl: Clusters, corstr: str, alpha: np.ndarray, D: np.ndarray, e: np.ndarray, lookups):
    """Yield per chunk: padded D (k,m,p), e (k,m), R^-1 D, R^-1 e."""
    p = D.shape[1]
    table = None if corstr == "independence" else _table(corstr, alpha, cl.nwaves)
    for rows, code in zip(_chunks(cl), lookups, strict=True):
        idx = cl.index[rows]
        mask = cl.mask[rows]
        safe = np.maximum(idx, 0)
        Dp = np.where(mask[:, :, None], D[safe], 0.0)
        ep = np.where(mask, e[safe], 0.0)
        if table is None:
            yield Dp, ep, Dp, ep
            continue
        rhs = np.concatenate([Dp, ep[:, :, None]], axis=2)
        sol = np.linalg.solve(table[code], rhs)
        yield Dp, ep, sol[:, :, :p], sol[:, :, p]


def _beta_step(cl, corstr, alpha, D, e, lookups):
    p = D.shape[1]
    H = np.zeros((p, p))
    G = np.zeros(p)
    for Dp, _ep, RiD, Rie in _cluster_solve(cl, corstr, alpha, D, e, lookups):
        H += np.einsum("kmp,kmq->pq", Dp, RiD)
        G += np.einsum("kmp,km->p", Dp, Rie)
    return np.linalg.solve(H, G)


def _alpha_step(cl: Clusters, corstr: str, alpha: np.ndarray, e: np.ndarray, phi: float, pair_w: np.ndarray):
    """One Gauss-Newton step; a pair counts with weight ``w_j w_k`` (geepack's ``genzi(W_i)``)."""
    z = e[cl.pair_j] * e[cl.pair_k] / phi
    if corstr == "exchangeable":
        tw = float(pair_w.sum())
        return np.array([float(pair_w @ (z - alpha[0])) / tw]) if tw > 0 else np.zeros(1)
    if corstr == "ar1":
        d = cl.pair_d
        pw = np.power(alpha[0], np.arange(int(d.max(initial=1)) + 1, dtype=float))
        rho = pw[d]
        E = np.where(d == 1, 1.0, d * pw[np.maximum(d - 1, 0)])
        H = float(E @ (pair_w * E))
        return np.array([float(E @ (pair_w * (z - rho))) / H]) if H > 0 else np.zeros(1)
    q = len(alpha)
    cnt = np.bincount(cl.pair_param, weights=pair_w, minlength=q)
    tot = np.bincount(cl.pair_param, weights=pair_w * (z - alpha[cl.pair_param]), minlength=q)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / cnt, 0.0)


@dataclass(frozen=True)
class GeeFit:
    beta: np.ndarray
    alpha: np.ndarray
    scale: float
    vbeta: np.ndarray
    vbeta_naive: np.ndarray
    iterations: int
    converged: bool
    unobserved_pairs: tuple[tuple[int, int], ...]


def n_alpha(corstr: str, nwaves: int) -> int:
    return {"independence": 0, "exchangeable": 1, "ar1": 1}.get(corstr, nwaves * (nwaves - 1) // 2)


def fit_geepack(
    y: np.ndarray,
    X: np.ndarray,
    cl: Clusters,
    *,
    family: str,
    corstr: str,
    tol: float = 1e-4,
    maxiter: int = 25,
    beta0: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> GeeFit:
    """geepack's ``gee_est`` then ``gee_var`` (identity scale and correlation links).

    ``offset`` is added to the linear predictor with coefficient 1 (R's ``offset()``).
    ``weights`` are geepack's prior weights ``W``: the beta step and the sandwich use
    ``sqrt(w)``-scaled rows of ``D`` and of the Pearson residuals outside ``R_i^-1`` (so a zero
    weight is not the same as leaving the row out of its cluster), the scale is the ``w``-weighted
    mean of the squared Pearson residuals and a pair counts with ``w_j w_k`` in the alpha step.
    The start scale is unweighted, as geese.fit's ``lm.fit``.
    """
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    rw = np.sqrt(w)
    pair_w = w[cl.pair_j] * w[cl.pair_k]
    beta = (glm_start(y, X, family, offset=offset, weights=weights) if beta0 is None
            else np.asarray(beta0, dtype=float).copy())
    off = np.zeros(len(y)) if offset is None else offset

    def pearson(b):
        eta = X @ b + off
        mu = _linkinv(family, eta)
        rv = 1 / np.sqrt(_variance(family, mu))
        return eta, mu, rv, (y - mu) * rv

    lookups = [] if corstr == "independence" else [_lookup(cl, corstr, rows) for rows in _chunks(cl)]
    if not lookups:
        lookups = [None] * len(_chunks(cl))
    _, _, _, e0 = pearson(beta)
    gamma = float(np.mean(e0**2))
    alpha = np.zeros(n_alpha(corstr, cl.nwaves))
    converged = False
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007 (used after the loop)
        eta, mu, rv, e = pearson(beta)
        D = X * (rw * rv * _mu_eta(family, eta))[:, None]
        dbeta = _beta_step(cl, corstr, alpha, D, rw * e, lookups)
        beta = beta + dbeta
        _, _, _, e = pearson(beta)
        new_gamma = float(w @ e**2 / w.sum())
        dgamma = new_gamma - gamma
        gamma = new_gamma
        dalpha = _alpha_step(cl, corstr, alpha, e, gamma, pair_w) if len(alpha) else np.zeros(0)
        alpha = alpha + dalpha
        delta = max(np.max(np.abs(dbeta)), abs(dgamma), np.max(np.abs(dalpha), initial=0.0))
        if delta <= tol:
            converged = True
            break
    # sandwich at the final values
    eta, mu, rv, e = pearson(beta)
    D = X * (rw * rv * _mu_eta(family, eta))[:, None]
    p = X.shape[1]
    A = np.zeros((p, p))
    meat = np.zeros((p, p))
    for Dp, _ep, RiD, Rie in _cluster_solve(cl, corstr, alpha, D, rw * e, lookups):
        A += np.einsum("kmp,kmq->pq", Dp, RiD) / gamma
        U = np.einsum("kmp,km->kp", Dp, Rie) / gamma
        meat += U.T @ U
    naive = np.linalg.inv(A)
    vbeta = naive @ meat @ naive
    unobserved: tuple[tuple[int, int], ...] = ()
    if corstr == "unstructured":
        cnt = np.bincount(cl.pair_param, minlength=len(alpha))
        iu = np.triu_indices(cl.nwaves, 1)
        unobserved = tuple((int(a) + 1, int(b) + 1) for a, b, c in zip(*iu, cnt, strict=True) if c == 0)
    return GeeFit(beta, alpha, gamma, vbeta, naive, it, converged, unobserved)
