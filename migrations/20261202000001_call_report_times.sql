-- Service report (issue 12): the instants the KPIs are measured from, on the call row.
-- queued_at: the call first entered a queue (wait = answer or abandon − queued_at);
-- connected_at: an agent first answered (talk starts; arrived_at/answered_at are the
-- daemon's own answer to the INVITE, before the IVR);
-- leak_at: the caller pressed the leak digit (the leak lane's digit → answer time).
ALTER TABLE calls
    ADD COLUMN queued_at     TIMESTAMPTZ,
    ADD COLUMN connected_at  TIMESTAMPTZ,
    ADD COLUMN leak_at       TIMESTAMPTZ;

-- The report reads calls by arrival time.
CREATE INDEX calls_by_arrival ON calls (arrived_at);
-- Occupancy reads every agent's changes in a time range.
CREATE INDEX agent_state_changes_by_time ON agent_state_changes (at);
