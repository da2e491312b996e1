-- The hotline's records: responsible units, agents, customer files (一户一档), calls, tickets
-- and their append-only audit trail. Codes are the stable text codes of
-- src/tickets/model.rs; the CHECK lists below must name exactly those codes.

CREATE TABLE units (
    code        TEXT PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,40}$'),
    name        TEXT NOT NULL,
    phone       TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    extension   TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE
);

-- One file per household (一户一档).
CREATE TABLE customers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_number  TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    phone_numbers   TEXT[] NOT NULL DEFAULT '{}',
    address         TEXT NOT NULL DEFAULT '',
    area            TEXT NOT NULL DEFAULT '',
    -- Registered for priority handling (hotline-rules §6).
    special_group   TEXT CHECK (special_group IN ('elderly_alone', 'disabled', 'other')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Screen pop: which household is calling.
CREATE INDEX customers_by_phone ON customers USING GIN (phone_numbers);

CREATE TABLE calls (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Derived from the SIP Call-ID.
    call_id                 TEXT NOT NULL UNIQUE,
    caller_number           TEXT NOT NULL,
    called_number           TEXT NOT NULL,
    arrived_at              TIMESTAMPTZ NOT NULL,
    answered_at             TIMESTAMPTZ,
    ended_at                TIMESTAMPTZ,
    ivr_path                TEXT[] NOT NULL DEFAULT '{}',
    queue                   TEXT,
    agent_id                TEXT,
    recording_consent       TEXT CHECK (recording_consent IN ('granted', 'declined')),
    recording_consent_via   TEXT CHECK (recording_consent_via IN ('dtmf', 'voice', 'agent')),
    recording_consent_at    TIMESTAMPTZ,
    recording_file          TEXT,
    disposition             TEXT CHECK (disposition IN
        ('answered', 'abandoned_in_ivr', 'abandoned_in_queue', 'self_served', 'transferred', 'failed')),
    CHECK ((recording_consent IS NULL) = (recording_consent_at IS NULL))
);
-- Screen pop: this caller's recent calls.
CREATE INDEX calls_by_caller ON calls (caller_number, arrived_at DESC);

-- Per-day ticket number sequence; the row lock serialises same-day creates, so numbers have
-- no gaps and a rolled back create gives its number back.
CREATE TABLE ticket_day_counters (
    day         DATE PRIMARY KEY,
    last_seq    INTEGER NOT NULL
);

CREATE TABLE tickets (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number              TEXT NOT NULL UNIQUE CHECK (number ~ '^GD[0-9]{8}-[0-9]{6}$'),
    channel             TEXT NOT NULL CHECK (channel IN ('hotline', 'wechat', 'service_window',
        'complaint_line', 'gov_12345', 'message_board', 'group_referral', 'letter_visit', 'media')),
    category            TEXT NOT NULL CHECK (category IN ('query', 'praise', 'consultation',
        'suggestion', 'opinion', 'service_application', 'tip_off', 'repair', 'complaint', 'urge',
        'leak')),
    complaint_level     TEXT CONSTRAINT tickets_complaint_level_code
        CHECK (complaint_level IN ('l3', 'l2', 'l1')),
    status              TEXT NOT NULL CHECK (status IN ('draft', 'dispatched', 'accepted',
        'returned', 'extension_requested', 'replied', 'callback', 'reopened', 'adjudication',
        'closed')),
    priority            INTEGER NOT NULL DEFAULT 0
        CONSTRAINT tickets_priority_range CHECK (priority BETWEEN 0 AND 9),
    caller_name         TEXT NOT NULL DEFAULT '',
    caller_number       TEXT NOT NULL DEFAULT '',
    caller_address      TEXT NOT NULL DEFAULT '',
    description         TEXT NOT NULL DEFAULT '',
    customer_id         BIGINT CONSTRAINT tickets_customer_id_fkey REFERENCES customers (id),
    responsible_unit    TEXT CONSTRAINT tickets_responsible_unit_fkey REFERENCES units (code),
    dispatch_due        TIMESTAMPTZ,
    contact_due         TIMESTAMPTZ,
    finish_due          TIMESTAMPTZ,
    callback_due        TIMESTAMPTZ,
    -- An urge (催办) points at the ticket it chases.
    parent_ticket_id    BIGINT CONSTRAINT tickets_parent_ticket_id_fkey REFERENCES tickets (id),
    call_id             TEXT CONSTRAINT tickets_call_id_fkey REFERENCES calls (call_id),
    -- Client-chosen key that makes a retried create return the first ticket.
    request_id          TEXT UNIQUE,
    created_by          TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Bumped on every change; the API's etag.
    version             INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT tickets_complaint_level_needs_complaint
        CHECK (complaint_level IS NULL OR category = 'complaint')
);
CREATE INDEX tickets_newest_first ON tickets (created_at DESC, id DESC);
CREATE INDEX tickets_by_caller ON tickets (caller_number, created_at DESC, id DESC);
CREATE INDEX tickets_by_customer ON tickets (customer_id, created_at DESC, id DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX tickets_open_by_finish_due ON tickets (finish_due)
    WHERE status <> 'closed' AND finish_due IS NOT NULL;
CREATE INDEX tickets_by_call ON tickets (call_id) WHERE call_id IS NOT NULL;

-- Append-only audit trail: one row per created ticket and per changed field.
CREATE TABLE ticket_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    field       TEXT,
    old_value   TEXT,
    new_value   TEXT,
    reason      TEXT
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);

CREATE FUNCTION ticket_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket_events is append-only';
END
$$;
CREATE TRIGGER ticket_events_append_only BEFORE UPDATE OR DELETE ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION ticket_events_refuse_change();
