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
-- uses: counting_process, _risk_period, _candidate_events
-- param: event_type  varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin      varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end   date    = null            -- null: the last date recorded in the study
-- param: recurrent   boolean = false           -- keep follow-up after the first event, every event flagged (Andersen-Gill)
-- param: window_days integer = 90              -- recent_sessions counts sessions in the last window_days days
with
kept as (
    -- the participants counting_process builds intervals for
    select * from _risk_period where end_date > origin_date
),
event_days as (
    -- the days an interval of counting_process ends with an event
    select participant_id, stop_date as day from counting_process where event = 1
),
sources as (
    select participant_id, event_date as day, 'event' as source from _candidate_events
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
    select 'dropped: no origin', participant_id
    from participants p
    where not exists (select 1 from _risk_period r where r.participant_id = p.participant_id)
    union all
    select 'dropped: no follow-up after the origin', participant_id
    from _risk_period where end_date <= origin_date
    union all
    select 'kept', participant_id from kept
),
ordered as (
    select participant_id, tstart, tstop, event,
           lag(tstop) over (partition by participant_id order by tstart, tstop) as previous_stop
    from counting_process
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
