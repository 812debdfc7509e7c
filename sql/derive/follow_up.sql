-- follow_up: one row per participant with an origin: the origin, the end of follow-up
-- (exit, last contact or the administrative end, whichever comes first) and why it
-- ended, with the baseline covariates and the first session's route and drug.
-- Other derivations build on it (`-- uses: follow_up`).
-- Participants without an origin (no session when origin = first_session) are left out.
--
-- param: origin         varchar = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date    = null            -- null: the last date recorded in the study
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
windows as (
    select o.*, x.exit_date, x.exit_reason, lc.last_contact, se.admin_end,
           least(coalesce(x.exit_date, lc.last_contact, o.origin_date), se.admin_end) as censor_date
    from origins o
    cross join study_end se
    left join exit_of x using (participant_id)
    left join last_contact lc using (participant_id)
    where o.origin_date is not null
)
select participant_id, site_id, sex, diagnosis, birth_year, prior_episodes,
       concomitant_antidepressant, baseline_weight_kg, enrolled_on, route, drug,
       origin_date, exit_date, exit_reason, last_contact, admin_end, censor_date,
       case
           when exit_date is not null and exit_date <= admin_end then 'exit: ' || exit_reason
           when censor_date = admin_end then 'administrative end'
           else 'last contact'
       end as censor_reason,
       year(origin_date) - birth_year as age_at_origin
from windows
order by participant_id
