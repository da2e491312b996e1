-- The post-call satisfaction survey (seed 003 §10(1)): the caller's rating after the agent
-- left, on the call row and on the call's ticket. Not the callback ratings
-- (satisfaction_attitude / satisfaction_result), which the callback after the ticket is
-- handled records.

ALTER TABLE calls
    ADD COLUMN survey_rating TEXT
        CHECK (survey_rating IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    -- The key the caller pressed, as configured at the time (ivr.survey.*.digit).
    ADD COLUMN survey_key TEXT CHECK (survey_key ~ '^[0-9*#]$'),
    ADD COLUMN survey_at TIMESTAMPTZ,
    ADD CONSTRAINT calls_survey_complete
        CHECK ((survey_rating IS NULL) = (survey_at IS NULL)
           AND (survey_rating IS NULL) = (survey_key IS NULL));

ALTER TABLE tickets
    ADD COLUMN call_survey_rating TEXT
        CHECK (call_survey_rating IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    ADD COLUMN call_survey_at TIMESTAMPTZ,
    ADD CONSTRAINT tickets_call_survey_complete
        CHECK ((call_survey_rating IS NULL) = (call_survey_at IS NULL));
