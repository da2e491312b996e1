-- Master data managed over hotline.v1.Admin (units and household files) and imported with
-- hotlinectl: units carry the areas they serve and their duty phone, and every change to a
-- unit or a household file is audited (who and when).

-- The on-call URI (or number) used for leak dispatch by phone.
ALTER TABLE units RENAME COLUMN phone TO duty_phone;
ALTER TABLE units
    ADD COLUMN areas        TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN updated_at   TIMESTAMPTZ NOT NULL DEFAULT now();

-- Append-only trail of master data changes: one row per created, changed or deleted unit or
-- household file. `key` is the unit code or the account number; `detail` names the changed
-- fields.
CREATE TABLE master_data_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT NOT NULL,
    entity      TEXT NOT NULL CHECK (entity IN ('unit', 'customer')),
    key         TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    detail      TEXT
);
CREATE INDEX master_data_events_by_key ON master_data_events (entity, key, id);

CREATE FUNCTION master_data_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'master_data_events is append-only';
END
$$;
CREATE TRIGGER master_data_events_append_only BEFORE UPDATE OR DELETE ON master_data_events
    FOR EACH ROW EXECUTE FUNCTION master_data_events_refuse_change();

-- SearchCustomers: households of an area in id order (address substring filtered within).
CREATE INDEX customers_by_area ON customers (area, id);
-- DeleteUnit: the tickets dispatched to a unit.
CREATE INDEX tickets_by_unit ON tickets (responsible_unit, status)
    WHERE responsible_unit IS NOT NULL;

-- The caller look-up on every call (Store::caller_facts) reads only the caller's open
-- tickets: these index just those, so a look-up reads no closed ticket's row.
CREATE INDEX tickets_open_by_caller ON tickets (caller_number, created_at DESC, id DESC)
    WHERE status <> 'closed';
CREATE INDEX tickets_open_by_customer ON tickets (customer_id, created_at DESC, id DESC)
    WHERE status <> 'closed';
-- Imports write the phone index directly instead of its pending list, which every caller
-- look-up would otherwise scan whole until the next vacuum.
ALTER INDEX customers_by_phone SET (fastupdate = off);
