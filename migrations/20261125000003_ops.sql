-- Beside the call path: the call journal's applied-sequence guard (spool replay writes
-- nothing twice), IVR variables and recording retention on call rows, the full set of
-- consent outcomes the IVR reports, and outage announcements.

-- Highest journal sequence number applied per call: a replayed journal record whose seq is
-- not above it was already written and is skipped.
CREATE TABLE call_journal_applied (
    call_id     TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL
);

-- Entries the IVR collected (e.g. account), name → value.
ALTER TABLE calls ADD COLUMN ivr_variables JSONB NOT NULL DEFAULT '{}';
-- When the retention purge deleted the recording file.
ALTER TABLE calls ADD COLUMN recording_purged_at TIMESTAMPTZ;
-- Purge: recordings not yet purged, oldest first.
CREATE INDEX calls_recordings_to_purge ON calls (arrived_at)
    WHERE recording_file IS NOT NULL AND recording_purged_at IS NULL;

-- The IVR also reports consent it did not ask for (policy off) and how it was given
-- (stayed on the line, leak digit, no key pressed).
ALTER TABLE calls DROP CONSTRAINT calls_recording_consent_check;
ALTER TABLE calls ADD CONSTRAINT calls_recording_consent_check
    CHECK (recording_consent IN ('granted', 'declined', 'not_asked'));
ALTER TABLE calls DROP CONSTRAINT calls_recording_consent_via_check;
ALTER TABLE calls ADD CONSTRAINT calls_recording_consent_via_check
    CHECK (recording_consent_via IN ('dtmf', 'voice', 'agent', 'stayed_on_line',
        'leak_default', 'no_response', 'policy_off'));

-- Outage announcements played before the first menu. An announcement is spoken from `text`
-- (rendered once to <state_dir>/announcements/<id>.wav when a TTS command is configured) or
-- plays the named prompt. Empty `dids` / `areas` mean: every called number / every area.
CREATE TABLE announcements (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text        TEXT,
    prompt      TEXT CHECK (prompt ~ '^[a-z0-9_]{1,64}$'),
    dids        TEXT[] NOT NULL DEFAULT '{}',
    areas       TEXT[] NOT NULL DEFAULT '{}',
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    -- File name (under <state_dir>/announcements/) of the rendered text, when rendered.
    audio_file  TEXT,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT announcements_text_or_prompt CHECK (text IS NOT NULL OR prompt IS NOT NULL),
    CONSTRAINT announcements_ends_after_start CHECK (ends_at > starts_at)
);
CREATE INDEX announcements_by_end ON announcements (ends_at);
