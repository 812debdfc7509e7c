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
-- uses: _risk_period, _counted_events, _session_days
-- param: event_type  varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin      varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end   date    = null            -- null: the last date recorded in the study
-- param: recurrent   boolean = false           -- keep follow-up after the first event, every event flagged (Andersen-Gill)
-- param: window_days integer = 90              -- recent_sessions counts sessions in the last window_days days
with
kept as (
    -- no interval without follow-up after the origin (counted in the diagnostics)
    select * from _risk_period where end_date > origin_date
),
event_days as (
    -- each counted event day up to the end of the period at risk ends an interval
    select c.participant_id, c.event_date as day
    from _counted_events c
    join kept k using (participant_id)
    where c.event_date <= k.end_date
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
    from _session_days
    union all
    select participant_id, day + $window_days::integer, null, null, -n_sessions, null, 0, false
    from _session_days
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
           k.age_at_origin, k.sex, k.diagnosis, k.route, k.drug, k.prior_episodes
    from state s
    join kept k using (participant_id)
    where s.day >= k.origin_date and s.day < k.end_date
)
select participant_id, site_id, origin_date, start_date, stop_date, tstart, tstop,
       tstart / 365.25 as start_years, tstop / 365.25 as stop_years,
       event, prior_events, current_dose_mg_per_kg, cumulative_dose_mg, recent_sessions,
       concomitant_antidepressant, latest_madrs,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes
from intervals
order by participant_id, tstart
