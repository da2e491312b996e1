-- Reliability (issue 10): calls that end without a BYE or because the daemon went away get a
-- disposition that says so, and the journal's replay guards are pruned.

-- interrupted: open when the daemon stopped (crash, kill -9); closed at the next start.
-- media_timeout: no RTP/RTCP from the caller for media.inactivity_secs.
-- session_expired: the SIP session timer ran out without a refresh (RFC 4028).
-- max_duration: longer than daemon.max_call_secs.
-- queue_timeout: waited in a queue longer than daemon.max_queue_wait_secs.
ALTER TABLE calls DROP CONSTRAINT calls_disposition_check;
ALTER TABLE calls ADD CONSTRAINT calls_disposition_check CHECK (disposition IN
    ('answered', 'abandoned_in_ivr', 'abandoned_in_queue', 'self_served', 'transferred', 'failed',
     'interrupted', 'media_timeout', 'session_expired', 'max_duration', 'queue_timeout'));

-- When the guard last moved: guards of calls long finished are pruned once the spool is empty
-- (nothing older can be replayed then).
ALTER TABLE call_journal_applied ADD COLUMN applied_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX call_journal_applied_by_age ON call_journal_applied (applied_at);

-- Open calls, for closing the ones a stopped daemon left open.
CREATE INDEX calls_open ON calls (arrived_at) WHERE ended_at IS NULL;
