-- competing_risks: per participant, time from the origin to the first of several
-- causes, cause-coded: cause 0 = censored, 1..k in the order of $causes, with the
-- cause name ('censored' for 0) and the source record (table, batch, line). A cause is an
-- events.event_type, 'death' (exits with reason died) or 'withdrawal' (exits with
-- reason withdrew), as cohort.derive_parameters checks before the query runs.
-- Censoring as in time_to_event: exit (death and withdrawal censor when they are not
-- causes), last contact or the administrative end. Causes
-- on the same day: the first in $causes wins, n_causes_same_day tells. An event on
-- the origin day counts only with $include_origin_day. Participants without an
-- origin are left out.
--
-- uses: follow_up
-- param: causes         varchar[] = ['ketamine_use_disorder', 'death', 'withdrawal'] -- in code order 1..k
-- param: origin         varchar   = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date      = null            -- null: the last date recorded in the study
-- param: include_origin_day boolean = false
with
causes as (
    select i as cause, ($causes::varchar[])[i] as cause_name
    from range(1, len($causes::varchar[]) + 1) t(i)
),
cause_events as (
    select c.cause, c.cause_name, e.participant_id, e.event_date,
           'events' as source_table, e.batch_id, e.source_line
    from causes c
    join events e on e.event_type = c.cause_name
    union all
    select c.cause, c.cause_name, x.participant_id, x.exit_date, 'exits', x.batch_id, x.source_line
    from causes c
    join exits x on (c.cause_name = 'death' and x.reason = 'died')
                 or (c.cause_name = 'withdrawal' and x.reason = 'withdrew')
),
in_follow_up as (
    select e.*
    from follow_up w
    join cause_events e using (participant_id)
    where (e.event_date > w.origin_date
           or ($include_origin_day::boolean and e.event_date = w.origin_date))
      and e.event_date <= w.censor_date
),
first_day as (
    select participant_id, min(event_date) as event_date
    from in_follow_up
    group by participant_id
),
first_cause as (
    select f.participant_id, f.event_date,
           min(e.cause)                                               as cause,
           count(distinct e.cause)                                    as n_causes_same_day,
           arg_min(e.source_table, [e.cause, e.batch_id, e.source_line]) as source_table,
           arg_min(e.batch_id, [e.cause, e.batch_id, e.source_line])     as source_batch,
           arg_min(e.source_line, [e.cause, e.batch_id, e.source_line])  as source_line
    from first_day f
    join in_follow_up e using (participant_id, event_date)
    group by f.participant_id, f.event_date
),
result as (
    select w.participant_id, w.site_id, w.origin_date,
           coalesce(f.event_date, w.censor_date)                          as end_date,
           coalesce(f.cause, 0)                                           as cause,
           coalesce(c.cause_name, 'censored')                             as cause_name,
           coalesce(f.n_causes_same_day, 0)                               as n_causes_same_day,
           case when f.event_date is null then w.censor_reason end       as censor_reason,
           f.source_table as event_source_table, f.source_batch as event_source_batch,
           f.source_line as event_source_line,
           w.age_at_origin, w.sex, w.diagnosis, w.route, w.drug, w.prior_episodes,
           w.concomitant_antidepressant
    from follow_up w
    left join first_cause f using (participant_id)
    left join causes c on c.cause = f.cause
)
select participant_id, site_id, origin_date, end_date,
       greatest(date_diff('day', origin_date, end_date), 0)               as time_days,
       greatest(date_diff('day', origin_date, end_date), 0) / 365.25      as time_years,
       cause, cause_name, n_causes_same_day, censor_reason,
       event_source_table, event_source_batch, event_source_line,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant
from result
order by participant_id
