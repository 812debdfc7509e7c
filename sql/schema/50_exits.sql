-- End of follow-up: what censors a participant.
create table if not exists store.exits (
    participant_id  varchar not null,
    exit_date       date    not null,
    reason          varchar not null check (reason in ('completed', 'withdrew', 'lost_to_follow_up', 'died')),
    batch_id        bigint  not null,
    source_line     bigint  not null
);
