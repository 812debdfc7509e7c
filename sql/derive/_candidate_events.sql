-- _candidate_events: building block: every record that can be the event $event_type,
-- one row per record with its source (table, batch, line) so results can be traced
-- back. Death is recorded as an exit, not as an event: with event_type 'death' the
-- candidates are the exits with reason died. Whether a record counts (after the
-- origin, before the end of follow-up) is for the derivation using it to decide.
--
-- param: event_type varchar = 'relapse' -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis' for adverse_event); null: any
select participant_id, event_date, 'events' as source_table, batch_id, source_line
from events
where event_type = $event_type::varchar
  and ($term::varchar is null or lower(term) = lower($term::varchar))
union all
select participant_id, exit_date, 'exits', batch_id, source_line
from exits
where $event_type::varchar = 'death' and reason = 'died'
