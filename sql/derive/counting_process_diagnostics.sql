-- counting_process_diagnostics: the checks R's tmerge reports, for the intervals
-- counting_process builds with the same parameters. One row per (source, check):
-- participants (in the table, dropped with the reason, kept), intervals (count,
-- start >= stop, overlaps, gaps, events flagged) and, for each dated source (the
-- events of event_type, sessions, sessions leaving the window, MADRS), where its
-- records fall: before the origin (history for covariates, ignored for events), on
-- the origin day, during follow-up, at its end, after it (ignored), tied (several
-- records of the source on one participant-day: one change), on an event day
-- (a covariate change there holds after the event) and after the first event;
-- records of participants left out are counted apart. examples: up to 5 participants.
--
-- param: event_type  varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: origin      varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end   date    = null            -- null: the last date recorded in the study
-- param: recurrent   boolean = false           -- keep follow-up after the first event, every event flagged (Andersen-Gill)
-- param: window_days integer = 90              -- recent_sessions counts sessions in the last window_days days
with
-- shared with counting_process.sql: begin
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
-- shared with counting_process.sql: end
, -- counting_process_diagnostics only
sources as (
    select participant_id, event_date as day, 'event' as source from candidate_events
    union all
    select participant_id, session_date, 'session' from treatment_sessions
    union all
    select participant_id, session_date + $window_days::integer, 'session leaves window'
    from treatment_sessions
    union all
    select participant_id, assessed_on, 'MADRS' from assessments where instrument = 'MADRS'
),
placed as (
    select s.source, s.participant_id,
           case when k.participant_id is null then 'participant left out'
                when s.day < k.origin_date then 'before the origin'
                when s.day = k.origin_date then 'on the origin day'
                when s.day < k.end_date then 'during follow-up'
                when s.day = k.end_date then 'at the end of follow-up'
                else 'after the end of follow-up' end                       as position,
           count(*) over (partition by s.source, s.participant_id, s.day) > 1 as tied,
           k.participant_id is not null and ed.day is not null              as at_event,
           s.day > k.first_event                                            as after_first_event
    from sources s
    left join kept k using (participant_id)
    left join event_days ed on ed.participant_id = s.participant_id and ed.day = s.day
),
record_checks as (
    select source, position as check_name, participant_id from placed
    union all
    select source, 'tied: same day as another record', participant_id from placed where tied
    union all
    select source, 'on an event day', participant_id from placed where at_event
    union all
    select source, 'after the first event', participant_id from placed where after_first_event
),
participant_checks as (
    select 'in the participants table' as check_name, participant_id from participants
    union all
    select 'dropped: no origin', participant_id from origins where origin_date is null
    union all
    select 'dropped: no follow-up after the origin', participant_id
    from follow_up where end_date <= origin_date
    union all
    select 'kept', participant_id from kept
),
ordered as (
    select participant_id, tstart, tstop, event,
           lag(tstop) over (partition by participant_id order by tstart, tstop) as previous_stop
    from intervals
),
interval_checks as (
    select 'intervals' as check_name, participant_id from ordered
    union all
    select 'start >= stop', participant_id from ordered where tstart >= tstop
    union all
    select 'overlapping the previous interval', participant_id from ordered where tstart < previous_stop
    union all
    select 'gap after the previous interval', participant_id from ordered where tstart > previous_stop
    union all
    select 'events flagged', participant_id from ordered where event = 1
),
found as (
    select source, check_name, participant_id from record_checks
    union all
    select 'participants', check_name, participant_id from participant_checks
    union all
    select 'intervals', check_name, participant_id from interval_checks
),
counts as (
    select source, check_name, count(*) as n_records
    from found
    group by source, check_name
),
who as (
    select source, check_name, count(*) as n_participants,
           list_sort(min(participant_id, 5)) as examples
    from (select distinct source, check_name, participant_id from found)
    group by source, check_name
),
grid as (
    select * from (values
        (1, 'participants', 'in the participants table'),
        (2, 'participants', 'dropped: no origin'),
        (3, 'participants', 'dropped: no follow-up after the origin'),
        (4, 'participants', 'kept'),
        (5, 'intervals', 'intervals'),
        (6, 'intervals', 'start >= stop'),
        (7, 'intervals', 'overlapping the previous interval'),
        (8, 'intervals', 'gap after the previous interval'),
        (9, 'intervals', 'events flagged')) g(position, source, check_name)
    union all
    select 10 + 10 * s.i + c.j, s.source, c.check_name
    from (values (0, 'event'), (1, 'session'), (2, 'session leaves window'), (3, 'MADRS')) s(i, source)
    cross join (values (0, 'before the origin'), (1, 'on the origin day'), (2, 'during follow-up'),
                       (3, 'at the end of follow-up'), (4, 'after the end of follow-up'),
                       (5, 'tied: same day as another record'), (6, 'on an event day'),
                       (7, 'after the first event'), (8, 'participant left out')) c(j, check_name)
)
select g.source, g.check_name, coalesce(c.n_records, 0) as n_records,
       coalesce(w.n_participants, 0) as n_participants, coalesce(w.examples, []) as examples
from grid g
left join counts c using (source, check_name)
left join who w using (source, check_name)
order by g.position
