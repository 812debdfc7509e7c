-- time_to_event: per participant, time from an origin to the first event of one
-- type, censored at exit, death (unless death is the event), last contact or the
-- administrative end date (see follow_up). ADaM ADTTE-like: one row per participant,
-- with the source record (table, batch, line) of each event so it can be traced back.
-- An event on the origin day counts only with $include_origin_day.
--
-- uses: follow_up, _candidate_events
-- param: event_type     varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term           varchar = null            -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin         varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date    = null            -- null: the last date recorded in the study
-- param: include_origin_day boolean = false
with
in_follow_up as (
    select e.participant_id, e.event_date, e.source_table, e.batch_id, e.source_line,
           -- the first event; of several records that day, the first loaded (batch, line)
           row_number() over (partition by e.participant_id
                              order by e.event_date, e.batch_id, e.source_line) as nth
    from follow_up f
    join _candidate_events e using (participant_id)
    where (e.event_date > f.origin_date or ($include_origin_day::boolean and e.event_date = f.origin_date))
      and e.event_date <= f.censor_date
),
first_event as (
    select participant_id, event_date, source_table, batch_id as source_batch, source_line
    from in_follow_up
    where nth = 1
),
result as (
    select f.participant_id, f.site_id, f.origin_date,
           coalesce(e.event_date, f.censor_date)                as end_date,
           (e.event_date is not null)::integer                   as event,
           case when e.event_date is null then f.censor_reason end as censor_reason,
           e.source_table as event_source_table, e.source_batch as event_source_batch,
           e.source_line as event_source_line,
           f.age_at_origin, f.sex, f.diagnosis, f.route, f.drug, f.prior_episodes,
           f.concomitant_antidepressant, f.baseline_weight_kg
    from follow_up f
    left join first_event e using (participant_id)
)
select participant_id, site_id, origin_date, end_date,
       greatest(date_diff('day', origin_date, end_date), 0)               as time_days,
       greatest(date_diff('day', origin_date, end_date), 0) / 365.25      as time_years,
       event, censor_reason, event_source_table, event_source_batch, event_source_line,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant,
       baseline_weight_kg
from result
order by participant_id
