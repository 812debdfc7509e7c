-- landmark: datasets for dynamic prediction at landmark times. For each landmark
-- (months after the origin, calendar months), one row per participant still at risk
-- there: no counted event on or before the landmark date and follow-up going on
-- after it. Covariate history up to the landmark (records on the landmark day
-- included): cumulative dose and sessions so far, dose per kg of the latest session
-- day, days since the last session, latest MADRS and MoCA (with their dates). Time to
-- the event counts from the landmark, censored as in time_to_event (exit, death
-- unless it is the event, last contact, administrative end) and, with
-- $horizon_months, at the landmark plus the horizon. An event on the origin day is
-- not counted. Participants without an origin are left out.
--
-- uses: _first_event, _session_days
-- param: landmarks      integer[] = [6, 12, 24]     -- months after the origin
-- param: event_type     varchar   = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin         varchar   = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date      = null            -- null: the last date recorded in the study
-- param: horizon_months integer   = null            -- null: follow-up to its end
with
marks as (
    select distinct m as landmark_months
    from unnest($landmarks::integer[]) t(m)
),
at_risk as (
    -- time to the event counts from the landmark, so _first_event's end_date and event
    -- (counted from the origin) are left behind
    select f.participant_id, f.site_id, f.sex, f.diagnosis, f.birth_year, f.prior_episodes,
           f.concomitant_antidepressant, f.route, f.drug, f.origin_date, f.censor_date,
           f.censor_reason, f.event_date, f.event_source_table, f.event_source_batch,
           f.event_source_line, m.landmark_months,
           (f.origin_date + to_months(m.landmark_months))::date      as landmark_date
    from _first_event f
    cross join marks m
),
still_at_risk as (
    select a.*,
           case when $horizon_months::integer is null then null
                else (a.landmark_date + to_months($horizon_months::integer))::date end as horizon_date
    from at_risk a
    where a.censor_date > a.landmark_date
      and (a.event_date is null or a.event_date > a.landmark_date)
),
exposure as (
    select participant_id, day, dose_mg_per_kg,
           sum(dose_mg) over w     as cumulative_dose_mg,
           sum(n_sessions) over w  as sessions_so_far
    from _session_days
    window w as (partition by participant_id order by day
                 rows between unbounded preceding and current row)
),
scores as (
    select participant_id, instrument, assessed_on, arg_max(score, [batch_id, source_line]) as score
    from assessments
    where instrument in ('MADRS', 'MoCA')
    group by participant_id, instrument, assessed_on
),
madrs as (select participant_id, assessed_on, score from scores where instrument = 'MADRS'),
moca as (select participant_id, assessed_on, score from scores where instrument = 'MoCA'),
history as (
    select r.*,
           coalesce(x.cumulative_dose_mg, 0)     as cumulative_dose_mg,
           coalesce(x.sessions_so_far, 0)        as sessions_so_far,
           x.dose_mg_per_kg                      as current_dose_mg_per_kg,
           x.day                                 as last_session_date,
           m.score as latest_madrs, m.assessed_on as latest_madrs_date
    from still_at_risk r
    asof left join exposure x
        on x.participant_id = r.participant_id and r.landmark_date >= x.day
    asof left join madrs m
        on m.participant_id = r.participant_id and r.landmark_date >= m.assessed_on
),
with_moca as (
    select h.*, c.score as latest_moca, c.assessed_on as latest_moca_date
    from history h
    asof left join moca c
        on c.participant_id = h.participant_id and h.landmark_date >= c.assessed_on
),
result as (
    select h.*,
           least(coalesce(h.event_date, h.censor_date), h.censor_date,
                 coalesce(h.horizon_date, h.censor_date))                     as end_date,
           (h.event_date is not null
            and h.event_date <= coalesce(h.horizon_date, h.event_date))::integer as event
    from with_moca h
)
select participant_id, site_id, landmark_months, landmark_date, origin_date, end_date,
       date_diff('day', landmark_date, end_date)           as time_days,
       date_diff('day', landmark_date, end_date) / 365.25  as time_years,
       event,
       case
           when event = 1 then null
           when horizon_date is not null and horizon_date < coalesce(event_date, censor_date)
                and horizon_date < censor_date then 'horizon'
           else censor_reason
       end                                                  as censor_reason,
       -- an event after the horizon is not this row's event
       case when event = 1 then event_source_table end      as event_source_table,
       case when event = 1 then event_source_batch end      as event_source_batch,
       case when event = 1 then event_source_line end       as event_source_line,
       cumulative_dose_mg, sessions_so_far, current_dose_mg_per_kg,
       date_diff('day', last_session_date, landmark_date)   as days_since_last_session,
       latest_madrs, latest_madrs_date, latest_moca, latest_moca_date,
       year(landmark_date) - birth_year                     as age_at_landmark,
       sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant
from result
order by landmark_months, participant_id
