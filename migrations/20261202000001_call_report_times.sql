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
-- Deadlines by their due instant, callback needs by the reply, ratings by the attempt: the
-- report reads a period's worth of each, closed tickets included.
CREATE INDEX tickets_by_dispatch_due ON tickets (dispatch_due) WHERE dispatch_due IS NOT NULL;
CREATE INDEX tickets_by_contact_due ON tickets (contact_due) WHERE contact_due IS NOT NULL;
CREATE INDEX tickets_by_finish_due ON tickets ((COALESCE(extended_finish, finish_due)));
CREATE INDEX tickets_by_callback_due ON tickets (callback_due) WHERE callback_due IS NOT NULL;
CREATE INDEX tickets_by_replied_at ON tickets (replied_at) WHERE replied_at IS NOT NULL;
CREATE INDEX callback_attempts_by_time ON callback_attempts (at);
