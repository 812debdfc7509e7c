-- Clinical events and harms; adverse events carry a MedDRA-like term.
create table if not exists store.events (
    participant_id  varchar not null,
    event_date      date    not null,
    event_type      varchar not null check (event_type in
                        ('relapse', 'remission', 'hospitalisation', 'suicide_attempt',
                         'ketamine_use_disorder', 'non_prescribed_use', 'adverse_event')),
    term            varchar,
    severity        varchar check (severity in ('mild', 'moderate', 'severe', 'life_threatening', 'fatal')),
    batch_id        bigint  not null,
    source_line     bigint  not null,
    check (event_type <> 'adverse_event' or term is not null)
);
