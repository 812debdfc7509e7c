-- time_to_event: per participant, time from an origin to the first event of one
-- type, censored at exit, death (unless death is the event), last contact or the
-- administrative end date. ADaM ADTTE-like: one row per participant, with the
-- source record (table, batch, line) of each event so it can be traced back.
-- An event on the origin day counts only with $include_origin_day.
-- Participants without an origin (no session when origin = first_session) are left out.
--
-- param: event_type     varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: origin         varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date    = null            -- null: the last date recorded in the study
-- param: include_origin_day boolean = false
with
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
           p.concomitant_antidepressant, p.baseline_weight_kg, p.enrolled_on,
           fs.route, fs.drug,
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
candidate_events as (
    select participant_id, event_date, 'events' as source_table, batch_id, source_line
    from events
    where event_type = $event_type::varchar
    union all
    select participant_id, exit_date, 'exits', batch_id, source_line
    from exits
    where $event_type::varchar = 'death' and reason = 'died'
),
windows as (
    select o.*, x.exit_date, x.exit_reason, lc.last_contact, se.admin_end,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
),
first_event as (
    select w.participant_id,
           min(e.event_date)                        as event_date,
           arg_min(e.source_table, e.event_date)    as source_table,
           arg_min(e.batch_id, e.event_date)        as source_batch,
           arg_min(e.source_line, e.event_date)     as source_line
    from windows w
    join candidate_events e using (participant_id)
    where (e.event_date > w.origin_date or ($include_origin_day::boolean and e.event_date = w.origin_date))
      and e.event_date <= w.censor_date
    group by w.participant_id
),
result as (
    select w.participant_id, w.site_id, w.origin_date,
           coalesce(f.event_date, w.censor_date)                          as end_date,
           (f.event_date is not null)::integer                             as event,
           case
               when f.event_date is not null then null
               when w.exit_date is not null and w.exit_date <= w.admin_end then 'exit: ' || w.exit_reason
               when w.censor_date = w.admin_end then 'administrative end'
               else 'last contact'
           end                                                             as censor_reason,
           f.source_table as event_source_table, f.source_batch as event_source_batch,
           f.source_line as event_source_line,
           year(w.origin_date) - w.birth_year                              as age_at_origin,
           w.sex, w.diagnosis, w.route, w.drug, w.prior_episodes, w.concomitant_antidepressant,
           w.baseline_weight_kg
    from windows w
    left join first_event f using (participant_id)
)
select participant_id, site_id, origin_date, end_date,
       greatest(date_diff('day', origin_date, end_date), 0)               as time_days,
       greatest(date_diff('day', origin_date, end_date), 0) / 365.25      as time_years,
       event, censor_reason, event_source_table, event_source_batch, event_source_line,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant,
       baseline_weight_kg
from result
order by participant_id
