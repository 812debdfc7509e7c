"""Vectorised generation of one chunk of participants (numpy in, polars out).

All times are integer days since enrolment (day 0 = enrolled_on = first
session) until the frames are built, where they become dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cohort.simulate._truth import Truth
from cohort.tables import EVENT_TYPES

_TERMS = (None, "dissociation", "hypertension", "cystitis", "depression")
_SEVERITIES = (None, "mild", "moderate", "severe", "life_threatening", "fatal")
_TYPE = {t: i for i, t in enumerate(EVENT_TYPES)}
_TERM = {t: i for i, t in enumerate(_TERMS)}
_SEV = {t: i for i, t in enumerate(_SEVERITIES)}

_DIAGNOSES = np.array(["TRD", "MDD", "PTSD", "bipolar"])
_KEY_SHIFT = 1 << 22  # participant index * shift + day: sortable (p, day) keys (day < 11,000 years)


@dataclass(frozen=True)
class Config:
    start_day: int  # days since 1970-01-01 of the first possible enrolment
    admin_end_day: int  # days since 1970-01-01 of the administrative end of follow-up
    enrol_window: int  # enrolments fall in [start_day, start_day + enrol_window)
    n_sites: int
    id_width: int


def _within(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row -> owner index and 0-based position within its owner, for ``counts`` rows per owner."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(owner.size, dtype=np.int64) - starts[owner]
    return owner, pos


def _dates(offset_days: np.ndarray, enrol_day: np.ndarray, pidx: np.ndarray) -> pl.Series:
    return pl.Series((enrol_day[pidx] + offset_days).astype(np.int32)).cast(pl.Date)


def _idx(idx: np.ndarray) -> pl.Series:
    return pl.Series(idx.astype(np.uint32, copy=False))


def _labels(labels: tuple[str | None, ...] | list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(labels), dtype=pl.String).gather(_idx(idx))


def generate_chunk(
    rng: np.random.Generator, n: int, first_index: int, cfg: Config, truth: Truth
) -> dict[str, pl.DataFrame]:
    """Simulate participants ``first_index .. first_index + n - 1``; return canonical frames."""
    tp = truth.participants
    sites = truth.sites[: cfg.n_sites]

    # ---- participants -------------------------------------------------------
    w = np.array([s.weight for s in sites])
    site = rng.choice(len(sites), size=n, p=w / w.sum())
    enrol_day = cfg.start_day + rng.integers(0, cfg.enrol_window, size=n)
    male = rng.random(n) < tp["p_male"]
    age = np.clip(np.rint(rng.normal(tp["age_mean"], tp["age_sd"], n)), tp["age_min"], tp["age_max"])
    enrol_year = enrol_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    birth_year = (enrol_year - age).astype(np.int16)
    dx_p = np.array([tp["p_TRD"], tp["p_MDD"], tp["p_PTSD"], tp["p_bipolar"]])
    dx = rng.choice(4, size=n, p=dx_p / dx_p.sum())
    tw = truth.weight
    weight0 = np.round(np.clip(
        rng.normal(np.where(male, tw["male_mean"], tw["female_mean"]), tw["sd"]),
        tw["min"], tw["max"]), 1)
    prior = np.minimum(rng.poisson(tp["prior_episodes_mean"], n), 30).astype(np.int16)
    conc = rng.random(n) < tp["p_concomitant_antidepressant"]
    p_iv = np.array([s.p_iv for s in sites])[site]
    iv = rng.random(n) < p_iv
    p_hosp = np.array([s.p_hospital for s in sites])[site]
    in_hospital = iv & (rng.random(n) < p_hosp)

    # ---- exits: competing constant hazards, independent of everything -------
    fu = (cfg.admin_end_day - enrol_day).astype(np.float64)
    reasons = list(truth.exit_rates)
    t_exit = np.stack([rng.exponential(365.25 / truth.exit_rates[r], n) for r in reasons])
    first = t_exit.argmin(axis=0)
    t_min = t_exit[first, np.arange(n)]
    completed = t_min >= fu
    exit_off = np.where(completed, fu, np.maximum(np.floor(t_min), 1)).astype(np.int64)
    reason_idx = np.where(completed, len(reasons), first)
    reason_names = np.array([*reasons, "completed"])

    # ---- relapses: Weibull PH after a delay, recurrent (gap time) ------------
    lhr = truth.relapse_log_hr
    lp = (lhr["age_per_10y"] * (age - 45.0) / 10.0 + lhr["male"] * male + lhr["trd"] * (dx == 0)
          + lhr["route_iv"] * iv + lhr["prior_episodes"] * (prior - 2.0)
          + lhr["concomitant_antidepressant"] * conc)
    K = truth.max_relapses
    k_shape, k_scale, delay = truth.relapse_weibull_shape, truth.relapse_weibull_scale_days, truth.relapse_delay_days
    rel_day = np.full((K, n), np.iinfo(np.int64).max // 4, dtype=np.int64)
    rel_end = rel_day.copy()
    rel_gap = np.zeros((K, n), dtype=np.int64)
    origin = np.zeros(n)
    for k in range(K):
        e = rng.standard_exponential(n)
        t = origin + delay + k_scale * (e / np.exp(lp)) ** (1.0 / k_shape)
        gap = rng.integers(truth.relapse_confirm_gap_days[0], truth.relapse_confirm_gap_days[1] + 1, n)
        dur = rng.integers(truth.episode_days[0], truth.episode_days[1] + 1, n)
        obs = t < exit_off
        d = np.floor(t).astype(np.int64)
        rel_day[k] = np.where(obs, d, rel_day[k])
        rel_end[k] = np.where(obs, d + dur, rel_end[k])
        rel_gap[k] = gap
        origin = d + dur.astype(np.float64)
    observed = rel_day < exit_off[None, :]

    # ---- treatment sessions ---------------------------------------------------
    ind = np.array(truth.induction_days, dtype=np.int64)
    intervals = np.array(list(truth.maintenance_interval_days), dtype=np.int64)
    ip = np.array(list(truth.maintenance_interval_days.values()))
    interval = intervals[rng.choice(intervals.size, size=n, p=ip / ip.sum())]
    m0 = truth.maintenance_start_day
    n_ind = (ind[None, :] < exit_off[:, None]).sum(axis=1)
    # maintenance days m0 + j * interval (+-1 day), all strictly before exit
    n_maint = np.maximum(0, -(-(exit_off - 1 - m0) // interval))  # ceil
    counts = n_ind + n_maint

    def rep(x: np.ndarray) -> np.ndarray:  # per participant -> per session row
        return np.repeat(x, counts)

    s_p = rep(np.arange(n, dtype=np.int64))
    s_k = np.arange(s_p.size, dtype=np.int64) - rep(np.cumsum(counts) - counts)
    n_ind_r = rep(n_ind)
    is_ind = s_k < n_ind_r
    s_day = m0 + (s_k - n_ind_r) * rep(interval) + rng.integers(-1, 2, s_p.size, dtype=np.int64)
    s_day[is_ind] = ind[s_k[is_ind]]
    years = s_day * (1.0 / 365.25)
    drift = rng.normal(0.0, tw["drift_sd_kg_per_year"], n)
    half = tw["session_noise_halfwidth"]
    s_weight = rep(weight0) + rep(drift) * years + (rng.random(s_p.size) * (2 * half) - half)
    s_weight = np.clip(np.rint(s_weight * 10.0) / 10.0, tw["min"] - 5, tw["max"] + 5)
    td = truth.iv_dose_mg_per_kg
    dpk0 = np.clip(rng.normal(td["start_mean"], td["start_sd"], n), td["start_min"], td["start_max"])
    slope = np.where(rng.random(n) < td["p_flat"], 0.0,
                     td["slope_median_per_year"] * np.exp(rng.normal(0.0, td["slope_log_sd"], n)))
    te = truth.esketamine_dose_mg
    lvl0 = rng.choice(3, size=n, p=np.array([te["start_p_28"], te["start_p_56"], te["start_p_84"]]))
    esk_flat = rng.random(n) < te["p_flat"]
    step1 = np.where(esk_flat, np.inf, rng.exponential(te["mean_years_per_step"], n))
    step2 = step1 + rng.exponential(te["mean_years_per_step"], n)
    s_iv = rep(iv)
    dpk = np.minimum(td["max"], rep(dpk0) + rep(slope) * years)
    lvl = np.minimum(2, rep(lvl0) + (years >= rep(step1)) + (years >= rep(step2)))
    s_dose = np.where(s_iv, np.rint(dpk * s_weight * 10.0) / 10.0, np.array([28.0, 56.0, 84.0])[lvl])
    # prefix sums of dose for "cumulative dose strictly before day d"
    s_key = s_p * _KEY_SHIFT + s_day
    prefix = np.concatenate([[0.0], np.cumsum(s_dose)])
    p_first = np.searchsorted(s_key, np.arange(n, dtype=np.int64) * _KEY_SHIFT)

    def cum_dose_g(pidx: np.ndarray, day: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(s_key, pidx * _KEY_SHIFT + day, side="left")
        return (prefix[idx] - prefix[p_first[pidx]]) / 1000.0

    # ---- session-linked adverse events (one uniform per session) --------------
    hr = truth.harm_rates
    u = rng.random(s_p.size)
    nxt = np.empty_like(s_day)
    nxt[:-1] = s_day[1:]
    last = np.ones(s_p.size, dtype=bool)
    last[:-1] = s_p[1:] != s_p[:-1]
    nxt[last] = exit_off
    span = np.maximum(nxt - s_day, 1)
    cum_before = (prefix[:-1] - rep(prefix[p_first])) / 1000.0
    p_cyst = -np.expm1((-hr["cystitis_base"] / 365.25) * np.exp(hr["cystitis_per_g"] * cum_before) * span)
    p_d, p_h = hr["dissociation_per_session"], hr["hypertension_per_session"]
    ev_parts: list[tuple[np.ndarray, np.ndarray, str, str | None, np.ndarray | str | None]] = []
    m = u < p_d
    ev_parts.append((s_p[m], s_day[m], "adverse_event", "dissociation", "mild"))
    m = (u >= p_d) & (u < p_d + p_h)
    ev_parts.append((s_p[m], s_day[m], "adverse_event", "hypertension", "moderate"))
    m = (1.0 - u) < p_cyst
    c_day = s_day[m] + np.floor((1.0 - u[m]) / p_cyst[m] * span[m]).astype(np.int64)
    c_sev = np.array([_SEV["mild"], _SEV["moderate"], _SEV["severe"]])[
        rng.choice(3, size=int(m.sum()), p=[0.6, 0.3, 0.1])]
    ev_parts.append((s_p[m], c_day, "adverse_event", "cystitis", c_sev))

    # ---- MADRS: regular visits + relapse confirmation visits -----------------
    tm = truth.madrs
    every, jit = tm["visit_every_days"], tm["visit_jitter_days"]
    n_reg = (exit_off + jit - 1) // every + 1
    a_p, a_j = _within(n_reg)
    a_day = a_j * every + np.where(a_j > 0, rng.integers(-jit, jit + 1, a_p.size), 0)
    keep = a_day < exit_off[a_p]
    # observed relapses sorted by (participant, onset); onsets of one participant are > 70 days apart
    r_k, r_p = np.nonzero(observed)
    r_key = r_p * _KEY_SHIFT + rel_day[r_k, r_p]
    r_order = np.argsort(r_key, kind="stable")
    r_p, r_k, r_key = r_p[r_order], r_k[r_order], r_key[r_order]
    r_day, r_gap, r_end = rel_day[r_k, r_p], rel_gap[r_k, r_p], rel_end[r_k, r_p]

    def latest_onset(pidx: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the latest observed relapse of ``pidx`` with onset <= ``day`` (and validity)."""
        i = np.searchsorted(r_key, pidx * _KEY_SHIFT + day, side="right") - 1
        ok = i >= 0
        i = np.maximum(i, 0)
        if r_p.size:
            ok &= r_p[i] == pidx
        else:
            ok[:] = False
        return i, ok

    # clear the regular schedule around each relapse onset and its confirmation visit
    i, ok = latest_onset(a_p, a_day + 4)
    if r_p.size:
        keep &= ~(ok & (a_day <= r_day[i] + r_gap[i] + 4))
    a_p, a_day = a_p[keep], a_day[keep]
    a_p = np.concatenate([a_p, r_p, r_p])
    a_day = np.concatenate([a_day, r_day, r_day + r_gap])
    keep = a_day < exit_off[a_p]
    a_p, a_day = a_p[keep], a_day[keep]
    order = np.argsort(a_p * _KEY_SHIFT + a_day, kind="stable")
    a_p, a_day = a_p[order], a_day[order]
    i, ok = latest_onset(a_p, a_day)
    in_ep = ok & (a_day < r_end[i]) if r_p.size else np.zeros(a_p.size, dtype=bool)
    z = rng.standard_normal(a_p.size)
    score = np.where(
        a_day == 0, np.clip(np.rint(tm["baseline_mean"] + tm["baseline_sd"] * z), 22, 54),
        np.where(in_ep, np.clip(np.rint(tm["relapse_mean"] + tm["relapse_sd"] * z), tm["relapse_min"], 60),
                 np.clip(np.rint(tm["remitted_mean"] + tm["remitted_sd"] * z), 0, tm["remitted_max"])))
    prev_high = np.ones(a_p.size, dtype=bool)
    prev_high[1:] = score[:-1] > tm["remitted_max"]
    first_visit = np.ones(a_p.size, dtype=bool)
    first_visit[1:] = a_p[1:] != a_p[:-1]
    rem = (score <= tm["remitted_max"]) & prev_high & ~first_visit
    ev_parts.append((a_p[rem], a_day[rem], "remission", None, None))
    madrs_p, madrs_day, madrs_score = a_p, a_day, score

    # ---- relapse and relapse-linked events -------------------------------------
    sev = np.where(rng.random(r_p.size) < 0.3, _SEV["severe"], _SEV["moderate"])
    ev_parts.append((r_p, r_day, "relapse", None, sev))
    h = rng.random(r_p.size) < truth.p_hospitalised_per_relapse
    ev_parts.append((r_p[h], r_day[h] + rng.integers(0, r_gap[h] + 1), "hospitalisation", "depression", "severe"))
    s = rng.random(r_p.size) < truth.p_suicide_attempt_per_relapse
    ev_parts.append((r_p[s], r_day[s] + rng.integers(0, 28, int(s.sum())), "suicide_attempt", None,
                     "life_threatening"))

    # ---- person-time harms -------------------------------------------------
    t_kud = rng.exponential(365.25 / hr["ketamine_use_disorder"], n)
    kud = np.flatnonzero(t_kud < exit_off)
    ev_parts.append((kud, np.floor(t_kud[kud]).astype(np.int64), "ketamine_use_disorder", None, "moderate"))
    n_npu = rng.poisson(hr["non_prescribed_use"] * exit_off / 365.25)
    npu_p, _ = _within(n_npu)
    ev_parts.append((npu_p, np.floor(rng.random(npu_p.size) * exit_off[npu_p]).astype(np.int64),
                     "non_prescribed_use", None, None))

    # ---- cognition -------------------------------------------------------------
    n_cog = (exit_off + truth.cognition_jitter_days - 1) // truth.cognition_every_days + 1
    c_p, c_j = _within(n_cog)
    cj = truth.cognition_jitter_days
    c_day = c_j * truth.cognition_every_days + np.where(c_j > 0, rng.integers(-cj, cj + 1, c_p.size), 0)
    keep = (c_day < exit_off[c_p]) & ((c_j == 0) | (rng.random(c_p.size) >= truth.p_missed_cognition_visit))
    c_p, c_day = c_p[keep], c_day[keep]
    c_years = c_day / 365.25
    c_cum = cum_dose_g(c_p, c_day)
    cog = []
    for name, par in (("MoCA", truth.moca), ("DSST", truth.dsst)):
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        u0 = par["sd_u0"] * z1
        u1 = par["sd_u1"] * (par["corr_u0_u1"] * z1 + np.sqrt(1 - par["corr_u0_u1"] ** 2) * z2)
        y = (par["b0"] + par["b_years"] * c_years + par["b_cum"] * c_cum + u0[c_p] + u1[c_p] * c_years
             + rng.normal(0.0, par["sd_resid"], c_p.size))
        cog.append((name, np.clip(np.rint(y), par["min"], par["max"])))

    # ---- frames ---------------------------------------------------------------
    codes = np.array([s.site_id for s in sites])
    ids = pl.Series(codes[site]) + "-" + pl.Series(np.arange(first_index, first_index + n)).cast(
        pl.String).str.zfill(cfg.id_width)
    ids = ids.alias("participant_id")
    participants = pl.DataFrame({
        "participant_id": ids,
        "site_id": codes[site],
        "sex": np.where(male, "male", "female"),
        "birth_year": birth_year,
        "enrolled_on": pl.Series(enrol_day.astype(np.int32)).cast(pl.Date),
        "diagnosis": _DIAGNOSES[dx],
        "baseline_weight_kg": weight0,
        "prior_episodes": prior,
        "concomitant_antidepressant": conc,
    })
    sessions = pl.DataFrame({
        "participant_id": ids.gather(_idx(s_p)),
        "session_date": _dates(s_day, enrol_day, s_p),
        "drug": _labels(("racemic_ketamine", "esketamine"), np.where(s_iv, 0, 1)),
        "route": _labels(("iv", "intranasal"), np.where(s_iv, 0, 1)),
        "dose_mg": s_dose,
        "weight_kg": s_weight,
        "setting": _labels(("clinic", "hospital"), in_hospital[s_p].astype(np.int64)),
    })
    inst = ["MADRS"] + [name for name, _ in cog]
    as_p = np.concatenate([madrs_p, c_p, c_p])
    as_day = np.concatenate([madrs_day, c_day, c_day])
    as_inst = np.concatenate([np.zeros(madrs_p.size, np.int64), np.ones(c_p.size, np.int64),
                              np.full(c_p.size, 2, np.int64)])
    as_score = np.concatenate([madrs_score, cog[0][1], cog[1][1]])
    order = np.argsort((as_p * _KEY_SHIFT + as_day) * 4 + as_inst, kind="stable")
    assessments = pl.DataFrame({
        "participant_id": ids.gather(_idx(as_p[order])),
        "assessed_on": _dates(as_day[order], enrol_day, as_p[order]),
        "instrument": _labels(inst, as_inst[order]),
        "score": as_score[order].astype(np.float64),
    })
    ev_p = np.concatenate([p for p, *_ in ev_parts])
    ev_day = np.concatenate([d for _, d, *_ in ev_parts])
    ev_type = np.concatenate([np.full(p.size, _TYPE[t], np.int64) for p, _, t, _, _ in ev_parts])
    ev_term = np.concatenate([np.full(p.size, _TERM[term], np.int64) for p, _, _, term, _ in ev_parts])
    ev_sev = np.concatenate([
        (sev if isinstance(sev, np.ndarray) else np.full(p.size, _SEV[sev], np.int64))
        for p, _, _, _, sev in ev_parts])
    keep = ev_day < exit_off[ev_p]
    ev_p, ev_day, ev_type, ev_term, ev_sev = (a[keep] for a in (ev_p, ev_day, ev_type, ev_term, ev_sev))
    order = np.argsort((ev_p * _KEY_SHIFT + ev_day) * 16 + ev_type, kind="stable")
    events = pl.DataFrame({
        "participant_id": ids.gather(_idx(ev_p[order])),
        "event_date": _dates(ev_day[order], enrol_day, ev_p[order]),
        "event_type": _labels(EVENT_TYPES, ev_type[order]),
        "term": _labels(_TERMS, ev_term[order]),
        "severity": _labels(_SEVERITIES, ev_sev[order]),
    })
    exits = pl.DataFrame({
        "participant_id": ids,
        "exit_date": pl.Series((enrol_day + exit_off).astype(np.int32)).cast(pl.Date),
        "reason": reason_names[reason_idx],
    })
    return {
        "participants": participants,
        "treatment_sessions": sessions,
        "assessments": assessments,
        "events": events,
        "exits": exits,
    }
