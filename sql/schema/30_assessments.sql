-- Repeated measures in long format: one score of one instrument on one day.
-- Instrument ranges are validation rules (expectations/), not constraints,
-- so an out-of-range score is quarantined with its reason, not a failed load.
create table if not exists store.assessments (
    participant_id  varchar not null,
    assessed_on     date    not null,
    instrument      varchar not null check (instrument in
                        ('MADRS', 'PHQ-9', 'QIDS-SR16', 'MoCA', 'MMSE', 'DSST', 'CADSS', 'RAVLT', 'TMT-B')),
    score           double  not null check (isfinite(score)),
    batch_id        bigint  not null,
    source_line     bigint  not null
);
