-- _session_days: building block: one row per participant and day with treatment
-- sessions, as dose covariates change: the day's total dose (mg), the day's total dose
-- per kg (null when a session of the day has no weight, rather than a partial sum)
-- and the number of sessions.
select participant_id, session_date as day,
       sum(dose_mg)                                                         as dose_mg,
       case when count(dose_mg_per_kg) = count(*) then sum(dose_mg_per_kg) end as dose_mg_per_kg,
       count(*)                                                             as n_sessions
from treatment_sessions
group by participant_id, session_date
