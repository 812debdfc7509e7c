-- _risk_period: building block of counting_process and counting_process_diagnostics:
-- the _first_event row of every participant with an origin, with end_date the end of
-- the period at risk: the first counted event $event_type or, with $recurrent
-- (Andersen-Gill: follow-up goes on after each event), the end of follow-up.
-- first_event is the first counted event either way. A participant whose period does
-- not go past the origin (end_date <= origin_date) has no interval.
--
-- uses: _first_event
-- param: event_type  varchar = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin      varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end   date    = null            -- null: the last date recorded in the study
-- param: recurrent   boolean = false           -- keep follow-up after the first event
select participant_id, site_id, sex, diagnosis, birth_year, prior_episodes,
       concomitant_antidepressant, route, drug, origin_date, censor_date, age_at_origin,
       event_date                                                     as first_event,
       case when $recurrent::boolean then censor_date else end_date end as end_date
from _first_event
