-- person_time: person-years at risk and event counts by stratum, for incidence rates:
-- age band, sex, site, exposure level (cumulative dose band) and calendar year.
-- Follow-up from the origin to the first event (of $event_type) or censoring, as in
-- time_to_event, is split like Stata's stsplit or R's Epi::splitLexis at calendar-year
-- boundaries, at changes of age band and at changes of exposure band. Time is counted
-- in days at risk: the days after the origin up to and including the end, so an
-- event (on the end day) falls in the stratum of its own day. Age in a calendar year
-- is the year minus the birth year (only the birth year is known), so age bands change
-- on 1 January. A session on day d raises the cumulative dose from day d + 1 on. Bands
-- of cumulative dose (grams) are cut at $dose_bands_g: '<1 g', '1-<2 g', ..., '>=5 g'.
-- Participants without an origin or without follow-up after it contribute nothing.
--
-- uses: _first_event
-- param: event_type     varchar  = 'relapse'       -- an events.event_type, or 'death'
-- param: term       varchar = null      -- only events with this term (e.g. 'cystitis'); null: any
-- param: origin         varchar  = 'first_session' -- 'first_session' or 'enrolment'
-- param: admin_end      date     = null            -- null: the last date recorded in the study
-- param: age_band_years integer  = 10              -- width of the age bands
-- param: dose_bands_g   double[] = [1, 2, 5]       -- cut points of cumulative dose, grams, increasing
with
at_risk as (
    -- time to the first event; only follow-up after the origin contributes person-time
    select participant_id, site_id, sex, birth_year, origin_date, end_date, event as had_event
    from _first_event
    where end_date > origin_date
),
bands as (
    select i as band, ($dose_bands_g::double[])[i] as cut_g
    from range(1, len($dose_bands_g::double[]) + 1) t(i)
),
cumulative as (
    select s.participant_id, s.session_date as day,
           sum(s.dose_mg) over (partition by s.participant_id order by s.session_date
                                range between unbounded preceding and current row) / 1000.0 as dose_g
    from treatment_sessions s
    join at_risk f using (participant_id)
    where s.session_date < f.end_date
),
crossings as (
    -- the day each participant's cumulative dose first reaches each cut point
    select c.participant_id, b.band, min(c.day) as day
    from cumulative c
    join bands b on c.dose_g >= b.cut_g
    group by c.participant_id, b.band
),
cuts as (
    select participant_id, day, count(*) as bands_crossed from crossings group by participant_id, day
    union all
    select participant_id, make_date(y, 12, 31), 0
    from (select participant_id, origin_date, end_date,
                 unnest(generate_series(year(origin_date), year(end_date) - 1)) as y
          from at_risk)
    where make_date(y, 12, 31) > origin_date
    union all
    select participant_id, origin_date, 0 from at_risk
    union all
    select participant_id, end_date, 0 from at_risk
),
by_day as (
    select participant_id, day, sum(bands_crossed) as bands_crossed
    from cuts
    group by participant_id, day
),
segments as (
    select participant_id, day as start_date,
           lead(day) over w               as stop_date,
           (sum(bands_crossed) over w)::integer as exposure_band
    from by_day
    window w as (partition by participant_id order by day
                 rows between unbounded preceding and current row)
),
split as (
    select s.participant_id, f.site_id, f.sex, s.exposure_band,
           year(s.start_date + 1)                                  as calendar_year,
           year(s.start_date + 1) - f.birth_year                   as age,
           date_diff('day', s.start_date, s.stop_date)              as days,
           (f.had_event = 1 and s.stop_date = f.end_date)::integer  as event
    from segments s
    join at_risk f using (participant_id)
    where s.start_date >= f.origin_date and s.start_date < f.end_date
),
strata as (
    select floor(age / $age_band_years::integer)::integer * $age_band_years::integer as age_from,
           sex, site_id, exposure_band, calendar_year,
           sum(days)::bigint as person_days, sum(event)::bigint as events,
           count(distinct participant_id) as participants
    from split
    group by all
)
select age_from || '-' || (age_from + $age_band_years::integer - 1)             as age_band,
       sex, site_id,
       case
           when len($dose_bands_g::double[]) = 0 then 'all'
           when exposure_band = 0
               then '<' || printf('%g', ($dose_bands_g::double[])[1]) || ' g'
           when exposure_band = len($dose_bands_g::double[])
               then '>=' || printf('%g', ($dose_bands_g::double[])[exposure_band]) || ' g'
           else printf('%g', ($dose_bands_g::double[])[exposure_band]) || '-<'
                || printf('%g', ($dose_bands_g::double[])[exposure_band + 1]) || ' g'
       end                                                                          as exposure_band,
       exposure_band                                                                as exposure_level,
       calendar_year, person_days, person_days / 365.25 as person_years, events, participants,
       1000.0 * events / (person_days / 365.25)                                     as rate_per_1000_py
from strata
order by age_from, sex, site_id, exposure_level, calendar_year
