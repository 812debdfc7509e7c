-- recurrent_episodes: every event of one type per participant (relapse by default) in
-- the counting-process form of recurrent-event models: one row per episode at risk,
-- (start, stop] in calendar time since the origin (tstart, tstop: Andersen-Gill and
-- PWP total time) and in gap time since the previous event (gap_time: PWP gap time,
-- (0, gap_time]), the episode number, and the risk-set columns: in_ag_risk_set (every
-- interval belongs to the Andersen-Gill risk set) and pwp_stratum (= episode, pooled
-- from pwp_max_stratum on, as PWP models usually do for rare later episodes). The
-- last row of a participant is the censored interval after the last event (none when
-- follow-up ends with an event). Follow-up and censoring as in time_to_event; an
-- event on the origin day is not counted, several records of one day count once
-- (the first record is the source), events after the end of follow-up are ignored.
-- Participants without an origin or without follow-up after it are left out.
--
-- param: event_type      varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: origin          varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end       date    = null            -- null: the last date recorded in the study
-- param: pwp_max_stratum integer = null            -- null: one PWP stratum per episode
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
    select o.*, x.exit_date, x.exit_reason, se.admin_end,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
),
event_days as (
    select w.participant_id, e.event_date,
           arg_min(e.source_table, [e.batch_id, e.source_line]) as source_table,
           arg_min(e.batch_id, [e.batch_id, e.source_line])     as source_batch,
           arg_min(e.source_line, [e.batch_id, e.source_line])  as source_line
    from windows w
    join candidate_events e using (participant_id)
    where e.event_date > w.origin_date and e.event_date <= w.censor_date
    group by w.participant_id, e.event_date
),
stops as (
    select participant_id, event_date as stop_date, 1 as event,
           source_table, source_batch, source_line
    from event_days
    union all
    select w.participant_id, w.censor_date, 0, null, null, null
    from windows w
    where w.censor_date > w.origin_date
      and not exists (select 1 from event_days e
                      where e.participant_id = w.participant_id and e.event_date = w.censor_date)
),
episodes as (
    select s.*,
           row_number() over w                          as episode,
           coalesce(lag(s.stop_date) over w, o.origin_date) as start_date
    from stops s
    join windows o using (participant_id)
    window w as (partition by s.participant_id order by s.stop_date)
),
result as (
    select e.participant_id, w.site_id, w.origin_date, e.episode, e.start_date, e.stop_date,
           date_diff('day', w.origin_date, e.start_date)  as tstart,
           date_diff('day', w.origin_date, e.stop_date)   as tstop,
           date_diff('day', e.start_date, e.stop_date)    as gap_time,
           e.event,
           case
               when e.event = 1 then null
               when w.exit_date is not null and w.exit_date <= w.admin_end then 'exit: ' || w.exit_reason
               when w.censor_date = w.admin_end then 'administrative end'
               else 'last contact'
           end                                            as censor_reason,
           e.source_table as event_source_table, e.source_batch as event_source_batch,
           e.source_line as event_source_line,
           year(w.origin_date) - w.birth_year             as age_at_origin,
           w.sex, w.diagnosis, w.route, w.drug, w.prior_episodes, w.concomitant_antidepressant
    from episodes e
    join windows w using (participant_id)
)
select participant_id, site_id, origin_date, episode, start_date, stop_date,
       tstart, tstop, tstart / 365.25 as start_years, tstop / 365.25 as stop_years,
       gap_time, gap_time / 365.25 as gap_years, event, episode - 1 as prior_events,
       true as in_ag_risk_set,
       least(episode, coalesce($pwp_max_stratum::integer, episode)) as pwp_stratum,
       censor_reason, event_source_table, event_source_batch, event_source_line,
       age_at_origin, sex, diagnosis, route, drug, prior_episodes, concomitant_antidepressant
from result
order by participant_id, episode
