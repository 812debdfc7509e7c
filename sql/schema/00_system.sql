-- System tables: schema version, upload batches (provenance) and quarantine.
create schema if not exists store;

create table if not exists schema_version (
    version     integer   not null primary key,
    applied_at  timestamp not null default current_timestamp,
    description varchar   not null
);


create table if not exists uploads (
    batch_id          bigint    not null primary key,
    table_name        varchar   not null check (table_name in
                          ('participants', 'treatment_sessions', 'assessments', 'events', 'exits')),
    site_id           varchar   not null,
    file_name         varchar   not null,
    file_path         varchar   not null,
    sha256            varchar   not null check (length(sha256) = 64),
    size_bytes        bigint    not null check (size_bytes >= 0),
    mapping           varchar,               -- the mapping spec used, as TOML text
    rows_read         bigint    not null check (rows_read >= 0),
    rows_loaded       bigint    not null check (rows_loaded >= 0),
    rows_quarantined  bigint    not null check (rows_quarantined >= 0),
    rows_warned       bigint    not null default 0 check (rows_warned >= 0),
    loaded_at         timestamp not null default current_timestamp,
    loaded_by         varchar   not null,
    status            varchar   not null check (status in
                          ('loaded', 'rejected', 'superseded', 'rolled_back')),
    replaces          bigint,
    ended_at          timestamp,             -- when it left force (superseded or rolled back)
    message           varchar,
    check (rows_read = rows_loaded + rows_quarantined)
);

create table if not exists quarantine (
    batch_id     bigint  not null,
    table_name   varchar not null,
    source_file  varchar not null,
    source_line  bigint  not null,   -- 1-based line (or row) of the record in its source file
    column_name  varchar,
    value        varchar,
    rule         varchar not null,
    severity     varchar not null check (severity in ('error', 'fatal')),
    message      varchar not null,
    raw_record   varchar not null    -- the source record as JSON, as read
);

create table if not exists validation_findings (
    batch_id     bigint  not null,
    table_name   varchar not null,
    source_line  bigint,
    participant_id varchar,
    column_name  varchar,
    value        varchar,
    rule         varchar not null,
    severity     varchar not null check (severity in ('warning', 'error', 'fatal')),
    message      varchar not null
);
