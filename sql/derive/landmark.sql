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
-- param: landmarks      integer[] = [6, 12, 24]     -- months after the origin
-- param: event_type     varchar   = 'relapse'       -- an events.event_type, or 'death'
-- param: origin         varchar   = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date      = null            -- null: the last date recorded in the study
-- param: horizon_months integer   = null            -- null: follow-up to its end
with
study_end as (
    select coalesce($admin_end::date, greatest(
        (select max(session_date) from treatment_sessions),
        (select max(assessed_on) from assessments),
        (select max(event_date) from events),
        (select max(exit_date) from exits))) as admin_end
),
first_session as (
    select participant_id,
           min(session_date)               as first_session,
           arg_min(route, session_date)    as route,
           arg_min(drug, session_date)     as drug
    from treatment_sessions
    group by participant_id
),
origins as (
    select p.participant_id, p.site_id, p.sex, p.diagnosis, p.birth_year, p.prior_episodes,
           p.concomitant_antidepressant, fs.route, fs.drug,
           case $origin::varchar
               when 'enrolment' then p.enrolled_on
               when 'first_session' then fs.first_session
           end as origin_date
    from participants p
    left join first_session fs using (participant_id)
),
exit_of as (
    select participant_id,
           min(exit_date)              as exit_date,
           arg_min(reason, exit_date)  as exit_reason
    from exits
    group by participant_id
),
last_contact as (
    select participant_id, max(d) as last_contact
    from (
        select participant_id, session_date as d from treatment_sessions
        union all select participant_id, assessed_on from assessments
        union all select participant_id, event_date from events
    )
    group by participant_id
),
candidate_events as (
    select participant_id, event_date, 'events' as source_table, batch_id, source_line
    from events
    where event_type = $event_type::varchar
    union all
    select participant_id, exit_date, 'exits', batch_id, source_line
    from exits
    where $event_type::varchar = 'death' and reason = 'died'
),
windows as (
    select o.*, x.exit_date, x.exit_reason, se.admin_end,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
),
first_event as (
    select w.participant_id,
           min(e.event_date)                                       as event_date,
           arg_min(e.source_table, (e.event_date, e.batch_id, e.source_line)) as source_table,
           arg_min(e.batch_id, (e.event_date, e.batch_id, e.source_line))     as source_batch,
           arg_min(e.source_line, (e.event_date, e.batch_id, e.source_line))  as source_line
    from windows w
    join candidate_events e using (participant_id)
    where e.event_date > w.origin_date and e.event_date <= w.censor_date
    group by w.participant_id
),
marks as (
    select distinct m as landmark_months
    from unnest($landmarks::integer[]) t(m)
),
at_risk as (
    select w.*, m.landmark_months,
           (w.origin_date + to_months(m.landmark_months))::date      as landmark_date,
           f.event_date, f.source_table, f.source_batch, f.source_line
    from windows w
    cross join marks m
    left join first_event f using (participant_id)
),
still_at_risk as (
    select a.*,
           case when $horizon_months::integer is null then null
                else (a.landmark_date + to_months($horizon_months::integer))::date end as horizon_date
    from at_risk a
    where a.censor_date > a.landmark_date
      and (a.event_date is null or a.event_date > a.landmark_date)
),
session_days as (
    select participant_id, session_date as day,
           sum(dose_mg)                                                         as dose_mg,
           case when count(dose_mg_per_kg) = count(*) then sum(dose_mg_per_kg) end as dose_mg_per_kg,
           count(*)                                                             as n_sessions
    from treatment_sessions
    group by participant_id, session_date
),
exposure as (
    select participant_id, day, dose_mg_per_kg,
           sum(dose_mg) over w     as cumulative_dose_mg,
           sum(n_sessions) over w  as sessions_so_far
    from session_days
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
           when exit_date is not null and exit_date <= admin_end then 'exit: ' || exit_reason
           when censor_date = admin_end then 'administrative end'
           else 'last contact'
       end                                                  as censor_reason,
       case when event = 1 then source_table end            as event_source_table,
       case when event = 1 then source_batch end            as event_source_batch,
       case when event = 1 then source_line end             as event_source_line,
       cumulative_dose_mg, sessions_so_far, current_dose_mg_per_kg,
       date_diff('day', last_session_date, landmark_date)   as days_since_last_session,
       latest_madrs, latest_madrs_date, latest_moca, latest_moca_date,
       year(landmark_date) - birth_year                     as age_at_landmark,
       sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant
from result
order by landmark_months, participant_id
