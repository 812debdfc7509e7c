-- counting_process: (start, stop] intervals per participant from an origin with
-- time-varying covariates that change at their dates, the event flag on the interval
-- that ends at the event (the R survival tmerge equivalent; diagnostics in
-- counting_process_diagnostics). Follow-up and censoring as in time_to_event
-- (exit, death unless it is the event, last contact, administrative end); an event on
-- the origin day is not counted (it would need a zero-length interval). Times are
-- days (and years) since the origin; a covariate recorded on day d holds from d on,
-- i.e. in the intervals that start at or after d (a session on the event day does
-- not change the interval that ends with the event). Covariates: dose per kg of the
-- latest session day (the day's total when several sessions share a day; null when
-- a weight is missing), cumulative dose (mg), sessions in the last window_days days
-- (drops when a session leaves the window), concomitant antidepressant (baseline,
-- fixed), latest MADRS score, and prior_events (events before the interval start,
-- for recurrent models). Participants without an origin or without follow-up after
-- it are left out (counted in counting_process_diagnostics).
--
-- param: event_type  varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: origin      varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end   date    = null            -- null: the last date recorded in the study
-- param: recurrent   boolean = false           -- keep follow-up after the first event, every event flagged (Andersen-Gill)
-- param: window_days integer = 90              -- recent_sessions counts sessions in the last window_days days
with
-- shared with counting_process_diagnostics.sql: begin
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
    select participant_id, min(exit_date) as exit_date
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
    select participant_id, event_date
    from events
    where event_type = $event_type::varchar
    union all
    select participant_id, exit_date
    from exits
    where $event_type::varchar = 'death' and reason = 'died'
),
windows as (
    select o.*,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
),
counted_events as (
    select distinct w.participant_id, e.event_date
    from windows w
    join candidate_events e using (participant_id)
    where e.event_date > w.origin_date and e.event_date <= w.censor_date
),
first_event as (
    select participant_id, min(event_date) as first_event
    from counted_events
    group by participant_id
),
follow_up as (
    select w.*, f.first_event,
           case when $recurrent::boolean then w.censor_date
                else coalesce(f.first_event, w.censor_date) end as end_date
    from windows w
    left join first_event f using (participant_id)
),
kept as (
    select * from follow_up where end_date > origin_date
),
event_days as (
    select c.participant_id, c.event_date as day
    from counted_events c
    join kept k using (participant_id)
    where c.event_date <= k.end_date
),
session_days as (
    select participant_id, session_date as day,
           sum(dose_mg)                                                         as dose_mg,
           case when count(dose_mg_per_kg) = count(*) then sum(dose_mg_per_kg) end as dose_mg_per_kg,
           count(*)                                                             as n_sessions
    from treatment_sessions
    group by participant_id, session_date
),
madrs_days as (
    select participant_id, assessed_on as day, arg_max(score, [batch_id, source_line]) as madrs
    from assessments
    where instrument = 'MADRS'
    group by participant_id, assessed_on
),
changes as (
    select participant_id, day, dose_mg, dose_mg_per_kg, n_sessions as window_delta,
           null::double as madrs, 0 as is_event, true as has_session
    from session_days
    union all
    select participant_id, day + $window_days::integer, null, null, -n_sessions, null, 0, false
    from session_days
    union all
    select participant_id, day, null, null, 0, madrs, 0, false from madrs_days
    union all
    select participant_id, day, null, null, 0, null, 1, false from event_days
    union all
    select participant_id, origin_date, null, null, 0, null, 0, false from kept
    union all
    select participant_id, end_date, null, null, 0, null, 0, false from kept
),
by_day as (
    select c.participant_id, c.day,
           sum(c.dose_mg)          as dose_mg,
           bool_or(c.has_session)  as has_session,
           max(c.dose_mg_per_kg)   as dose_mg_per_kg,
           sum(c.window_delta)     as window_delta,
           max(c.madrs)            as madrs,
           max(c.is_event)         as is_event
    from changes c
    join kept k using (participant_id)
    where c.day <= k.end_date
    group by c.participant_id, c.day
),
state as (
    select participant_id, day,
           lead(day) over w                                          as stop_day,
           coalesce(lead(is_event) over w, 0)                        as event,
           sum(is_event) over w                                      as prior_events,
           last_value(case when has_session then {'v': dose_mg_per_kg} end ignore nulls)
               over w                                                as latest_session,
           coalesce(sum(dose_mg) over w, 0)                          as cumulative_dose_mg,
           sum(window_delta) over w                                  as recent_sessions,
           last_value(madrs ignore nulls) over w                     as latest_madrs
    from by_day
    window w as (partition by participant_id order by day
                 rows between unbounded preceding and current row)
),
intervals as (
    select s.participant_id, k.site_id, k.origin_date,
           s.day as start_date, s.stop_day as stop_date,
           date_diff('day', k.origin_date, s.day)        as tstart,
           date_diff('day', k.origin_date, s.stop_day)   as tstop,
           s.event, s.prior_events,
           s.latest_session.v as current_dose_mg_per_kg,
           s.cumulative_dose_mg, s.recent_sessions, k.concomitant_antidepressant, s.latest_madrs,
           year(k.origin_date) - k.birth_year            as age_at_origin,
           k.sex, k.diagnosis, k.route, k.drug, k.prior_episodes
    from state s
    join kept k using (participant_id)
    where s.day >= k.origin_date and s.day < k.end_date
)
-- shared with counting_process_diagnostics.sql: end
select participant_id, site_id, origin_date, start_date, stop_date, tstart, tstop,
       tstart / 365.25 as start_years, tstop / 365.25 as stop_years,
       event, prior_events, current_dose_mg_per_kg, cumulative_dose_mg, recent_sessions,
       concomitant_antidepressant, latest_madrs,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes
from intervals
order by participant_id, tstart
