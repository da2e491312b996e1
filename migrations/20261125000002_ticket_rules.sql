-- What the service rules (src/tickets) need to persist: the facts of TicketFacts, the
-- complaint investigation deadline, callback attempts with their ratings, the supervisor
-- queue, and the overdue alerts already raised. Codes are those of src/tickets.

ALTER TABLE tickets
    -- TicketFacts.id: links follow-ups (urges) to their original independent of numbers.
    ADD COLUMN uid                         UUID NOT NULL DEFAULT gen_random_uuid()
        CONSTRAINT tickets_uid_key UNIQUE,
    -- The area (district, estate) complaints are grouped by for their automatic level.
    ADD COLUMN area                        TEXT NOT NULL DEFAULT '',
    ADD COLUMN complaint_level_overridden  BOOLEAN NOT NULL DEFAULT FALSE,
    -- Since when the centre owes a dispatch: intake, or the unit's return.
    ADD COLUMN awaiting_dispatch_since     TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN dispatched_at               TIMESTAMPTZ,
    ADD COLUMN handling_started_at         TIMESTAMPTZ,
    ADD COLUMN accepted_at                 TIMESTAMPTZ,
    ADD COLUMN contacted_at                TIMESTAMPTZ,
    ADD COLUMN replied_at                  TIMESTAMPTZ,
    ADD COLUMN extended_finish             TIMESTAMPTZ,
    -- A pending extension request: all four set or none.
    ADD COLUMN extension_requested_at      TIMESTAMPTZ,
    ADD COLUMN extension_until             TIMESTAMPTZ,
    ADD COLUMN extension_reason            TEXT,
    ADD COLUMN extension_resume            TEXT
        CHECK (extension_resume IN ('accepted', 'reopened')),
    ADD COLUMN centre_returns              INTEGER NOT NULL DEFAULT 0 CHECK (centre_returns >= 0),
    ADD COLUMN unsatisfied_callbacks       INTEGER NOT NULL DEFAULT 0
        CHECK (unsatisfied_callbacks >= 0),
    ADD COLUMN urges                       INTEGER NOT NULL DEFAULT 0 CHECK (urges >= 0),
    ADD COLUMN callback_plan               TEXT
        CHECK (callback_plan IN ('not_needed', 'sampled_out', 'automatic', 'human')),
    ADD COLUMN callback_attempts           INTEGER NOT NULL DEFAULT 0
        CHECK (callback_attempts >= 0),
    ADD COLUMN last_callback_attempt_at    TIMESTAMPTZ,
    ADD COLUMN next_callback_at            TIMESTAMPTZ,
    ADD COLUMN callback_declined           BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN repeat_demand               BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN night_dispatch_insisted     BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN investigation_due           TIMESTAMPTZ,
    -- The latest callback's ratings (004 §5).
    ADD COLUMN satisfaction_attitude       TEXT
        CHECK (satisfaction_attitude IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    ADD COLUMN satisfaction_result         TEXT
        CHECK (satisfaction_result IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    -- In the supervisor's queue (third urge, second centre return, second 'unsatisfied').
    ADD COLUMN supervisor_reason           TEXT,
    ADD CONSTRAINT tickets_pending_extension_whole CHECK (
        (extension_requested_at IS NULL) = (extension_until IS NULL)
        AND (extension_until IS NULL) = (extension_reason IS NULL)
        AND (extension_reason IS NULL) = (extension_resume IS NULL));

-- Extra facts of an audit event (the unit, the new level, the new deadline, the ratings).
ALTER TABLE ticket_events ADD COLUMN detail TEXT;

-- ListOverdue and the overdue watcher: open tickets by each due column.
CREATE INDEX tickets_open_by_dispatch_due ON tickets (dispatch_due)
    WHERE status <> 'closed' AND dispatch_due IS NOT NULL;
CREATE INDEX tickets_open_by_contact_due ON tickets (contact_due)
    WHERE status <> 'closed' AND contact_due IS NOT NULL;
CREATE INDEX tickets_open_by_investigation_due ON tickets (investigation_due)
    WHERE status <> 'closed' AND investigation_due IS NOT NULL;
CREATE INDEX tickets_open_by_callback_due ON tickets (callback_due)
    WHERE status <> 'closed' AND callback_due IS NOT NULL;
CREATE INDEX tickets_open_oldest_first ON tickets (created_at, id) WHERE status <> 'closed';
-- ListDueCallbacks: the callback agents' work list.
CREATE INDEX tickets_due_callbacks ON tickets (next_callback_at, id)
    WHERE status IN ('replied', 'callback') AND next_callback_at IS NOT NULL;
-- Complaint levels count related complaints of the last window_days.
CREATE INDEX tickets_complaints_by_subject ON tickets (responsible_unit, area, created_at)
    WHERE category = 'complaint';

-- Every callback attempt (回访), reached or not.
CREATE TABLE callback_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    at          TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('reached', 'unreachable', 'declined')),
    attitude    TEXT CHECK (attitude IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    result      TEXT CHECK (result IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    -- Who called (audit name of the actor).
    agent       TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    CHECK ((outcome = 'reached') = (attitude IS NOT NULL AND result IS NOT NULL))
);
CREATE INDEX callback_attempts_by_ticket ON callback_attempts (ticket_id, id);

-- Alerts the overdue watcher raised: one per ticket, deadline, due time and timeliness, so
-- a ticket is announced once when it becomes nearly due and once when overdue (again only
-- when an extension moves the due time).
CREATE TABLE ticket_alerts (
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    deadline    TEXT NOT NULL CHECK (deadline IN
        ('dispatch', 'contact', 'finish', 'investigation', 'callback')),
    due         TIMESTAMPTZ NOT NULL,
    timeliness  TEXT NOT NULL CHECK (timeliness IN ('nearly_due', 'overdue')),
    raised_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ticket_id, deadline, due, timeliness)
);
