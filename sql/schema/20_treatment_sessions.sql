-- Ketamine treatment sessions. dose_mg_per_kg is derived, never delivered twice.
create table if not exists store.treatment_sessions (
    participant_id  varchar not null,
    session_date    date    not null,
    drug            varchar not null check (drug in ('racemic_ketamine', 'esketamine')),
    route           varchar not null check (route in ('iv', 'intranasal', 'oral', 'im')),
    dose_mg         double  not null check (dose_mg > 0),
    weight_kg       double  check (weight_kg > 0 and weight_kg < 400),
    dose_mg_per_kg  double  generated always as (dose_mg / weight_kg) virtual,
    setting         varchar check (setting in ('clinic', 'hospital', 'home', 'research')),
    batch_id        bigint  not null,
    source_line     bigint  not null
);
