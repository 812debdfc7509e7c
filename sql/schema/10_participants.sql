-- Participants: one row per pseudonymous participant. No direct identifiers.
create table if not exists store.participants (
    participant_id      varchar  not null,
    site_id             varchar  not null,
    sex                 varchar  not null check (sex in ('female', 'male', 'other', 'unknown')),
    birth_year          smallint not null check (birth_year between 1900 and 2100),
    enrolled_on         date     not null,
    diagnosis           varchar  not null check (diagnosis in ('TRD', 'MDD', 'PTSD', 'bipolar')),
    baseline_weight_kg  double   check (baseline_weight_kg > 0 and baseline_weight_kg < 400),
    prior_episodes      smallint check (prior_episodes >= 0),
    concomitant_antidepressant boolean,
    batch_id            bigint   not null,
    source_line         bigint   not null,
    primary key (participant_id, batch_id)
);
