-- Agent desktops (issue 9): the agents' state timeline, the wrap-up disposition on the call,
-- and the indexes the screen pop's leak look-up needs.

-- Every state change of every agent, with its reason: login is a change from logged_out,
-- logout one to logged_out. KPIs (occupancy, not-ready time by reason) read it.
CREATE TABLE agent_state_changes (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    -- The daemon run (desk epoch) and the agent's version in it.
    epoch         BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    from_state    TEXT NOT NULL CHECK (from_state IN
        ('logged_out', 'ready', 'not_ready', 'ringing', 'on_call', 'wrap_up')),
    from_reason   TEXT,
    to_state      TEXT NOT NULL CHECK (to_state IN
        ('logged_out', 'ready', 'not_ready', 'ringing', 'on_call', 'wrap_up')),
    -- Set exactly for not_ready: a configured code or ring_no_answer / desktop_disconnected.
    reason_code   TEXT,
    at            TIMESTAMPTZ NOT NULL,
    CHECK ((to_state = 'not_ready') = (reason_code IS NOT NULL)),
    UNIQUE (agent_id, epoch, version)
);
CREATE INDEX agent_state_changes_by_agent ON agent_state_changes (agent_id, at);

-- CompleteWrapUp: the agent's disposition code and notes.
ALTER TABLE calls
    ADD COLUMN disposition_code  TEXT,
    ADD COLUMN agent_notes       TEXT NOT NULL DEFAULT '',
    ADD COLUMN wrapped_up_by     TEXT;

-- Screen pop: leak reports at the same address or in the same area in the last 30 days.
CREATE INDEX tickets_leaks_by_area ON tickets (area, created_at DESC) WHERE category = 'leak';
CREATE INDEX tickets_leaks_by_address ON tickets (caller_address, created_at DESC)
    WHERE category = 'leak';
