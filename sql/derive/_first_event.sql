-- _first_event: building block: the follow_up row of every participant with an origin,
-- with the first counted event $event_type (see _counted_events: after the origin day,
-- up to the end of follow-up; null when there is none) and its source, end_date (the
-- first event, else the end of follow-up: time to first event ends there) and event
-- (1 when follow-up ends with the event).
--
-- uses: follow_up, _counted_events
-- param: event_type varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin     varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end  date    = null            -- null: the last date recorded in the study
with
first_event as (
    -- one row per day in _counted_events, so the earliest day names one source
    select participant_id,
           min(event_date)                       as event_date,
           arg_min(source_table, event_date)     as event_source_table,
           arg_min(source_batch, event_date)     as event_source_batch,
           arg_min(source_line, event_date)      as event_source_line
    from _counted_events
    group by participant_id
)
select f.*, e.event_date, e.event_source_table, e.event_source_batch, e.event_source_line,
       coalesce(e.event_date, f.censor_date)     as end_date,
       (e.event_date is not null)::integer       as event
from follow_up f
left join first_event e using (participant_id)
