-- The canonical tables as analyses see them: rows of batches still in force.
-- Superseded and rolled-back batches stay in store.* as history.
create or replace view participants as
    select t.* from store.participants t
    join uploads u using (batch_id) where u.status = 'loaded';
create or replace view treatment_sessions as
    select t.* from store.treatment_sessions t
    join uploads u using (batch_id) where u.status = 'loaded';
create or replace view assessments as
    select t.* from store.assessments t
    join uploads u using (batch_id) where u.status = 'loaded';
create or replace view events as
    select t.* from store.events t
    join uploads u using (batch_id) where u.status = 'loaded';
create or replace view exits as
    select t.* from store.exits t
    join uploads u using (batch_id) where u.status = 'loaded';
