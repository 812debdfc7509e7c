-- trajectories: repeated measures in long format with time since first dose (years),
-- the participant's baseline value of the instrument, visit number and the cumulative
-- ketamine exposure before each visit (sessions strictly before the assessment date).
--
-- param: instruments varchar[] = null   -- null: every instrument
with
first_dose as (
    select participant_id, min(session_date) as first_dose,
           arg_min(route, session_date) as route, arg_min(drug, session_date) as drug
    from treatment_sessions
    group by participant_id
),
exposure as (
    select participant_id, session_date,
           sum(dose_mg) over w                as cumulative_dose_mg,
           count(*) over w                    as sessions_so_far
    from treatment_sessions
    window w as (partition by participant_id order by session_date
                 range between unbounded preceding and current row)
),
exposure_by_day as (
    select participant_id, session_date,
           max(cumulative_dose_mg) as cumulative_dose_mg, max(sessions_so_far) as sessions_so_far
    from exposure
    group by participant_id, session_date
),
visits as (
    select a.participant_id, a.instrument, a.assessed_on, a.score, a.batch_id, a.source_line
    from assessments a
    where $instruments::varchar[] is null or list_contains($instruments::varchar[], a.instrument)
),
with_exposure as (
    select v.*, coalesce(e.cumulative_dose_mg, 0) as cumulative_dose_mg,
           coalesce(e.sessions_so_far, 0) as sessions_before
    from visits v
    asof left join exposure_by_day e
        on v.participant_id = e.participant_id and v.assessed_on > e.session_date
),
numbered as (
    select w.*,
           row_number() over (partition by w.participant_id, w.instrument order by w.assessed_on) as visit,
           first_value(w.score) over (partition by w.participant_id, w.instrument
                                      order by w.assessed_on)                             as baseline
    from with_exposure w
)
select n.participant_id, p.site_id, n.instrument, n.assessed_on, n.visit, n.score, n.baseline,
       n.score - n.baseline                                              as change,
       fd.first_dose,
       date_diff('day', fd.first_dose, n.assessed_on) / 365.25           as years,
       n.cumulative_dose_mg, n.cumulative_dose_mg / 1000.0               as cumulative_dose_g,
       n.sessions_before,
       year(fd.first_dose) - p.birth_year                                as age_at_first_dose,
       p.sex, p.diagnosis, fd.route, fd.drug,
       n.batch_id, n.source_line
from numbered n
join participants p using (participant_id)
join first_dose fd using (participant_id)
order by n.participant_id, n.instrument, n.assessed_on
