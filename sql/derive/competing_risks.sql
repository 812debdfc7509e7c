-- competing_risks: per participant, time from the origin to the first of several
-- causes, cause-coded: cause 0 = censored, 1..k in the order of $causes, with the
-- cause name ('censored' for 0) and the source record (table, batch, line). A cause is an
-- events.event_type, 'death' (exits with reason died) or 'withdrawal' (exits with
-- reason withdrew). Censoring as in time_to_event: exit (death and withdrawal
-- censor when they are not causes), last contact or the administrative end. Causes
-- on the same day: the first in $causes wins, n_causes_same_day tells. An event on
-- the origin day counts only with $include_origin_day. Participants without an
-- origin are left out.
--
-- param: causes         varchar[] = ['ketamine_use_disorder', 'death', 'withdrawal'] -- in code order 1..k
-- param: origin         varchar   = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date      = null            -- null: the last date recorded in the study
-- param: include_origin_day boolean = false
with
causes as (
    select i as cause, ($causes::varchar[])[i] as cause_name
    from range(1, len($causes::varchar[]) + 1) t(i)
),
unknown_causes as (
    select cause_name from causes
    where cause_name not in ('death', 'withdrawal', 'relapse', 'remission', 'hospitalisation',
                             'suicide_attempt', 'ketamine_use_disorder', 'non_prescribed_use',
                             'adverse_event')
       or cause_name is null
),
checked as (
    select case when count(*) > 0 then error(
               'unknown cause(s) ' || string_agg(coalesce(cause_name, 'null'), ', ')
               || ' in causes; use death, withdrawal or an event type (relapse, remission, '
               || 'hospitalisation, suicide_attempt, ketamine_use_disorder, non_prescribed_use, '
               || 'adverse_event)') end as ok
    from unknown_causes
),
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
windows as (
    select o.*, x.exit_date, x.exit_reason, se.admin_end,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
),
in_follow_up as (
    select e.*
    from windows w
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
           case
               when f.event_date is not null then null
               when w.exit_date is not null and w.exit_date <= w.admin_end then 'exit: ' || w.exit_reason
               when w.censor_date = w.admin_end then 'administrative end'
               else 'last contact'
           end                                                             as censor_reason,
           f.source_table as event_source_table, f.source_batch as event_source_batch,
           f.source_line as event_source_line,
           year(w.origin_date) - w.birth_year                              as age_at_origin,
           w.sex, w.diagnosis, w.route, w.drug, w.prior_episodes, w.concomitant_antidepressant
    from windows w
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
cross join checked
where checked.ok is null
order by participant_id
