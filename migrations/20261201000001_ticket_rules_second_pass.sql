-- The ticket rules' second pass (issue 13): the facts and deadlines src/tickets added.

-- Leaks run on a clock (000 §14, 002 §18): the unit must be on site by on_site_due; the
-- unit reports its arrival (on_site_at).
ALTER TABLE tickets
    ADD COLUMN on_site_due  TIMESTAMPTZ,
    ADD COLUMN on_site_at   TIMESTAMPTZ;
CREATE INDEX tickets_open_by_on_site_due ON tickets (on_site_due)
    WHERE status <> 'closed' AND on_site_due IS NOT NULL;

-- Channels that need a 100% human callback (001 §7, §35): the online government
-- platforms (一网通办) join the government channels.
ALTER TABLE tickets DROP CONSTRAINT tickets_channel_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_channel_check CHECK (channel IN ('hotline',
    'wechat', 'service_window', 'complaint_line', 'gov_12345', 'message_board',
    'group_referral', 'letter_visit', 'media', 'online_gov'));
-- Flags that make a callback human (003 §11): a referred item (转办件) and a daily-report
-- key item (日报重点件).
ALTER TABLE tickets
    ADD COLUMN referred               BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN daily_report_key_item  BOOLEAN NOT NULL DEFAULT FALSE;

-- Intake facts: the time agreed with the caller for the callback (约时, 000 §14.9) and for a
-- repair visit (与客户约定时间, 000 §14.4).
ALTER TABLE tickets
    ADD COLUMN agreed_callback_at  TIMESTAMPTZ,
    ADD COLUMN agreed_visit_at     TIMESTAMPTZ;

-- Documents and photos of a ticket, by reference (000 §15.1.4 "上传相关单据、照片").
CREATE TABLE ticket_attachments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    uri         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('photo', 'document', 'audio', 'video')),
    added_by    TEXT NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (ticket_id, uri)
);

-- A callback the customer could not take now: tried again at the agreed time.
ALTER TABLE callback_attempts DROP CONSTRAINT callback_attempts_outcome_check;
ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_outcome_check CHECK (outcome IN
    ('reached', 'unreachable', 'declined', 'call_later'));

-- A supervisor's check of a complaint (000 §14.6, 001 §8): NULL unchecked; invalid ones do
-- not count against the unit.
ALTER TABLE tickets ADD COLUMN complaint_valid BOOLEAN
    CONSTRAINT tickets_complaint_valid_needs_complaint
        CHECK (complaint_valid IS NULL OR category = 'complaint');

-- A service application the unit refused, explaining why (000 §14.5).
ALTER TABLE tickets ADD COLUMN application_refused BOOLEAN NOT NULL DEFAULT FALSE;

-- Consultations (and by default suggestions) are answered to the caller by the centre
-- within reply_to_caller_due of the unit's reply (000 §14.2, §14.7).
ALTER TABLE tickets ADD COLUMN reply_to_caller_due TIMESTAMPTZ;
CREATE INDEX tickets_open_by_reply_to_caller_due ON tickets (reply_to_caller_due)
    WHERE status <> 'closed' AND reply_to_caller_due IS NOT NULL;

ALTER TABLE ticket_alerts DROP CONSTRAINT ticket_alerts_deadline_check;
ALTER TABLE ticket_alerts ADD CONSTRAINT ticket_alerts_deadline_check CHECK (deadline IN
    ('dispatch', 'contact', 'finish', 'investigation', 'callback', 'on_site',
     'reply_to_caller'));

-- Callback sampling is drawn per unit and day once the day has ended (004 §5): a replied
-- ticket waits for it as 'sample_pending'.
ALTER TABLE tickets DROP CONSTRAINT tickets_callback_plan_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_callback_plan_check CHECK (callback_plan IN
    ('not_needed', 'sample_pending', 'sampled_out', 'automatic', 'human'));
CREATE INDEX tickets_sample_pending ON tickets (responsible_unit, replied_at)
    WHERE callback_plan = 'sample_pending' AND status = 'replied';
