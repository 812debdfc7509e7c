"""The true parameters of the synthetic cohort (one place, documented)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Truth", "SITES", "Site", "DEFAULT_TRUTH"]


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    weight: float  # share of participants
    p_iv: float  # share of participants on IV racemic ketamine (others: intranasal esketamine)
    p_hospital: float  # share of IV participants treated in hospital (others: clinic)


SITES: tuple[Site, ...] = (
    Site("OSL", "oslo", 0.40, 0.75, 0.30),
    Site("LYN", "lyon", 0.25, 0.30, 0.50),
    Site("LDS", "leeds", 0.35, 0.50, 0.10),
)


def _frozen(d: dict[str, Any]) -> MappingProxyType:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Truth:
    """True parameters of :func:`cohort.simulate.simulate` (all times in days unless named).

    Relapse (``relapse_*``): the first relapse happens at
    ``T = relapse_delay_days + W`` days after enrolment, where ``W`` has the
    proportional-hazards Weibull distribution with cumulative hazard
    ``(w / relapse_weibull_scale_days) ** relapse_weibull_shape * exp(lp)``
    and ``lp = sum(relapse_log_hr[k] * x_k)`` over the covariates

    - ``age_per_10y``: ``(year(enrolled_on) - birth_year - 45) / 10``
    - ``male``: sex == "male"
    - ``trd``: diagnosis == "TRD" (vs any other)
    - ``route_iv``: route == "iv" (vs intranasal)
    - ``prior_episodes``: ``prior_episodes - 2``
    - ``concomitant_antidepressant``: concomitant_antidepressant is true

    (centering changes only the baseline hazard, never the log hazard ratios).
    A relapse is observed when ``T`` falls before the exit. Later relapses:
    an episode lasts ``U(episode_days)`` days, and the next relapse comes
    ``relapse_delay_days + W'`` days after recovery (gap-time model, same
    ``lp``), at most ``max_relapses`` per participant.

    Cognition (``moca``, ``dsst``): ``score_ij = b0 + b_years * years_ij +
    b_cum * cumulative_dose_g_ij + u0_i + u1_i * years_ij + e_ij`` with
    ``(u0, u1)`` bivariate normal (``sd_u0``, ``sd_u1``, ``corr_u0_u1``),
    ``e ~ N(0, sd_resid)``, rounded to an integer and clamped to the range.
    ``years_ij`` is (assessed_on - enrolled_on) / 365.25 and
    ``cumulative_dose_g_ij`` the sum of ``dose_mg`` of sessions strictly
    before ``assessed_on``, / 1000. Visits on day 0 and every
    ``cognition_every_days`` (+- ``cognition_jitter_days``); each follow-up visit
    is missed completely at random with probability ``p_missed_cognition_visit``.

    Harms (``harm_rates``): per person-year unless the key ends in
    ``_per_session``; cystitis has rate
    ``cystitis_base * exp(cystitis_per_g * cumulative_dose_g)`` per year.
    Exits (``exit_rates``): constant hazards per year, independent of
    everything else (non-informative censoring); participants still in follow-up
    at the administrative end exit as "completed".
    """

    relapse_log_hr: MappingProxyType = field(default_factory=lambda: _frozen({
        "age_per_10y": -0.10,
        "male": 0.15,
        "trd": 0.40,
        "route_iv": -0.25,
        "prior_episodes": 0.08,
        "concomitant_antidepressant": -0.20,
    }))
    relapse_weibull_shape: float = 0.9
    relapse_weibull_scale_days: float = 600.0
    relapse_delay_days: int = 42
    max_relapses: int = 6
    episode_days: tuple[int, int] = (28, 84)
    relapse_confirm_gap_days: tuple[int, int] = (5, 15)
    p_hospitalised_per_relapse: float = 0.20
    p_suicide_attempt_per_relapse: float = 0.03
    madrs: MappingProxyType = field(default_factory=lambda: _frozen({
        "baseline_mean": 32.0, "baseline_sd": 5.0,
        "remitted_mean": 5.0, "remitted_sd": 2.5, "remitted_max": 10,
        "relapse_mean": 29.0, "relapse_sd": 4.0, "relapse_min": 22,
        "visit_every_days": 28, "visit_jitter_days": 3,
    }))
    moca: MappingProxyType = field(default_factory=lambda: _frozen({
        "b0": 25.0, "b_years": -0.10, "b_cum": -0.25,
        "sd_u0": 1.5, "sd_u1": 0.20, "corr_u0_u1": -0.20, "sd_resid": 1.0,
        "min": 0, "max": 30,
    }))
    dsst: MappingProxyType = field(default_factory=lambda: _frozen({
        "b0": 60.0, "b_years": -0.50, "b_cum": -1.00,
        "sd_u0": 10.0, "sd_u1": 1.00, "corr_u0_u1": -0.20, "sd_resid": 4.0,
        "min": 0, "max": 133,
    }))
    cognition_every_days: int = 182
    cognition_jitter_days: int = 7
    p_missed_cognition_visit: float = 0.08  # follow-up cognition visits missed at random (MCAR)
    induction_days: tuple[int, ...] = (0, 3, 7, 10, 14, 17, 21, 24)
    maintenance_start_day: int = 28
    maintenance_interval_days: MappingProxyType = field(default_factory=lambda: _frozen(
        {7: 0.15, 14: 0.35, 21: 0.25, 28: 0.25}))
    iv_dose_mg_per_kg: MappingProxyType = field(default_factory=lambda: _frozen({
        "start_mean": 0.50, "start_sd": 0.07, "start_min": 0.30, "start_max": 0.70,
        "p_flat": 0.30, "slope_median_per_year": 0.05, "slope_log_sd": 0.5, "max": 0.98,
    }))
    esketamine_dose_mg: MappingProxyType = field(default_factory=lambda: _frozen({
        "start_p_28": 0.10, "start_p_56": 0.70, "start_p_84": 0.20,
        "p_flat": 0.40, "mean_years_per_step": 1.0,
    }))
    weight: MappingProxyType = field(default_factory=lambda: _frozen({
        "female_mean": 72.0, "male_mean": 84.0, "sd": 14.0, "min": 42.0, "max": 180.0,
        "drift_sd_kg_per_year": 1.0, "session_noise_halfwidth": 0.7,  # uniform noise per session
    }))
    participants: MappingProxyType = field(default_factory=lambda: _frozen({
        "p_male": 0.42, "age_mean": 45.0, "age_sd": 13.0, "age_min": 18, "age_max": 75,
        "p_TRD": 0.60, "p_MDD": 0.20, "p_PTSD": 0.10, "p_bipolar": 0.10,
        "prior_episodes_mean": 2.5, "p_concomitant_antidepressant": 0.60,
        "enrolment_window_days": 730,
    }))
    harm_rates: MappingProxyType = field(default_factory=lambda: _frozen({
        "ketamine_use_disorder": 0.012,
        "non_prescribed_use": 0.025,
        "cystitis_base": 0.010,
        "cystitis_per_g": 0.35,
        "dissociation_per_session": 0.020,
        "hypertension_per_session": 0.005,
    }))
    exit_rates: MappingProxyType = field(default_factory=lambda: _frozen({
        "died": 0.008, "withdrew": 0.050, "lost_to_follow_up": 0.040,
    }))
    sites: tuple[Site, ...] = SITES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable copy of every parameter."""

        def plain(v: Any) -> Any:
            if isinstance(v, MappingProxyType | dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            return v

        out = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            if k == "sites":
                v = [asdict(s) for s in v]
            out[k] = plain(v)
        return out

    def __getitem__(self, key: str) -> Any:  # mapping-style access: truth["moca"]["b_cum"]
        return getattr(self, key)


DEFAULT_TRUTH = Truth()
