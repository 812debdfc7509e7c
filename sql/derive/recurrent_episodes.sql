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
-- uses: follow_up, _counted_events
-- param: event_type      varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin          varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end       date    = null            -- null: the last date recorded in the study
-- param: pwp_max_stratum integer = null            -- null: one PWP stratum per episode
with
stops as (
    -- every counted event day ends an episode, and the end of follow-up ends the last one
    -- unless an event falls on it
    select participant_id, event_date as stop_date, 1 as event,
           source_table, source_batch, source_line
    from _counted_events
    union all
    select f.participant_id, f.censor_date, 0, null, null, null
    from follow_up f
    where f.censor_date > f.origin_date
      and not exists (select 1 from _counted_events e
                      where e.participant_id = f.participant_id and e.event_date = f.censor_date)
),
episodes as (
    select s.*,
           row_number() over w                          as episode,
           coalesce(lag(s.stop_date) over w, o.origin_date) as start_date
    from stops s
    join follow_up o using (participant_id)
    window w as (partition by s.participant_id order by s.stop_date)
),
result as (
    select e.participant_id, w.site_id, w.origin_date, e.episode, e.start_date, e.stop_date,
           date_diff('day', w.origin_date, e.start_date)  as tstart,
           date_diff('day', w.origin_date, e.stop_date)   as tstop,
           date_diff('day', e.start_date, e.stop_date)    as gap_time,
           e.event,
           case when e.event = 0 then w.censor_reason end as censor_reason,
           e.source_table as event_source_table, e.source_batch as event_source_batch,
           e.source_line as event_source_line,
           w.age_at_origin, w.sex, w.diagnosis, w.route, w.drug, w.prior_episodes,
           w.concomitant_antidepressant
    from episodes e
    join follow_up w using (participant_id)
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
