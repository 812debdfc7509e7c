-- _counted_events: building block: one row per participant and day with a counted
-- event $event_type: after the origin day (an event on the origin day would need a
-- zero-length interval) and on or before the end of follow-up (censor_date of
-- follow_up). Several records of one day are one event: n_records tells how many,
-- the source is the first record (by batch, then line).
--
-- uses: follow_up, _candidate_events
-- param: event_type varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin     varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end  date    = null            -- null: the last date recorded in the study
with
in_follow_up as (
    select e.*
    from follow_up f
    join _candidate_events e using (participant_id)
    where e.event_date > f.origin_date and e.event_date <= f.censor_date
)
select participant_id, event_date,
       count(*)                                          as n_records,
       arg_min(source_table, [batch_id, source_line])    as source_table,
       arg_min(batch_id, [batch_id, source_line])        as source_batch,
       arg_min(source_line, [batch_id, source_line])     as source_line
from in_follow_up
group by participant_id, event_date
