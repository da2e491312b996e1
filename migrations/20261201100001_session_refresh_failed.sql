-- SIP session timers (issue 10, RFC 4028): a call we hung up because our session refresh was
-- answered 408 or 481 (or not at all) says so. (session_expired, a refresh the caller's side
-- never sent, came with 20261201100000_call_liveness.) Numbered after that migration: it
-- replaces the same constraint.
ALTER TABLE calls DROP CONSTRAINT calls_disposition_check;
ALTER TABLE calls ADD CONSTRAINT calls_disposition_check CHECK (disposition IN
    ('answered', 'abandoned_in_ivr', 'abandoned_in_queue', 'self_served', 'transferred', 'failed',
     'interrupted', 'media_timeout', 'session_expired', 'session_refresh_failed', 'max_duration',
     'queue_timeout'));
