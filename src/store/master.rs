//! Master data as the Admin API manages it: responsible units (create, change, list, delete
//! unless tickets name them), household files read by account, phone or address, and the
//! bulk upsert of household files that an import streams in — one transaction per import,
//! idempotent on the account number. Every change leaves a row in `master_data_events`.

use super::records::{Customer, CustomerRow, NewCustomer, SpecialGroup};
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use std::collections::HashSet;

/// A responsible unit (责任单位) that tickets are dispatched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub code: String,
    pub name: String,
    /// The supply areas it serves (as in the household files).
    pub areas: Vec<String>,
    /// The on-call URI or number used for leak dispatch by phone.
    pub duty_phone: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a unit is made of; `code` names it and never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFields {
    pub code: String,
    pub name: String,
    pub areas: Vec<String>,
    pub duty_phone: Option<String>,
    pub active: bool,
}

/// A change to a unit: the fields given replace the stored ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitPatch {
    pub name: Option<String>,
    pub areas: Option<Vec<String>>,
    pub duty_phone: Option<Option<String>>,
    pub active: Option<bool>,
}

/// What `Store::delete_unit` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitRemoval {
    Deleted(Unit),
    /// Not deleted: this many tickets dispatched to it are still open.
    OpenTickets(i64),
    /// Not deleted: closed tickets name it, and their history must keep its code.
    ClosedTickets(i64),
}

/// How `Store::search_customers` finds households.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerQuery {
    /// Households listing this phone number (the caller look-up's index).
    Phone(String),
    Account(String),
    /// Households of `area` whose address contains `contains`.
    Address {
        area: String,
        contains: String,
    },
}

/// One page of households in id order, and the id the next page starts after.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub next_after: Option<i64>,
}

/// What an upsert did to one household file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

#[derive(sqlx::FromRow)]
struct UnitRow {
    code: String,
    name: String,
    areas: Vec<String>,
    duty_phone: Option<String>,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<UnitRow> for Unit {
    fn from(row: UnitRow) -> Unit {
        Unit {
            code: row.code,
            name: row.name,
            areas: row.areas,
            duty_phone: row.duty_phone,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const UNIT_COLUMNS: &str = "code, name, areas, duty_phone, active, created_at, updated_at";
const CUSTOMER_COLUMNS: &str =
    "id, account_number, name, phone_numbers, address, area, special_group";

async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    actor: &str,
    entity: &str,
    key: &str,
    action: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO master_data_events (actor, entity, key, action, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor)
    .bind(entity)
    .bind(key)
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Creates a unit; `Conflict` when its code is taken. With `dry_run`, answers the same
    /// and changes nothing.
    pub async fn create_unit(
        &self,
        unit: &UnitFields,
        actor: &str,
        dry_run: bool,
    ) -> Result<Unit, StoreError> {
        let mut tx = self.pool.begin().await?;
        let created: Option<UnitRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO units (code, name, areas, duty_phone, active) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING RETURNING {UNIT_COLUMNS}"
        )))
        .bind(&unit.code)
        .bind(&unit.name)
        .bind(&unit.areas)
        .bind(&unit.duty_phone)
        .bind(unit.active)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(created) = created else {
            return Err(StoreError::Conflict(format!("unit code {}", unit.code)));
        };
        audit(&mut tx, actor, "unit", &unit.code, "created", None).await?;
        finish(tx, dry_run).await?;
        Ok(created.into())
    }

    /// Changes the fields `patch` gives; `NotFound` when there is no such unit. A patch that
    /// changes nothing is not audited. With `dry_run`, answers the same and changes nothing.
    pub async fn update_unit(
        &self,
        code: &str,
        patch: &UnitPatch,
        actor: &str,
        dry_run: bool,
    ) -> Result<Unit, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Unit = fetch_unit(&mut tx, code, true).await?;
        let mut next = current.clone();
        let mut changed = Vec::new();
        if let Some(name) = &patch.name
            && *name != next.name
        {
            next.name = name.clone();
            changed.push("name");
        }
        if let Some(areas) = &patch.areas
            && *areas != next.areas
        {
            next.areas = areas.clone();
            changed.push("areas");
        }
        if let Some(duty_phone) = &patch.duty_phone
            && *duty_phone != next.duty_phone
        {
            next.duty_phone = duty_phone.clone();
            changed.push("duty_phone");
        }
        if let Some(active) = patch.active
            && active != next.active
        {
            next.active = active;
            changed.push("active");
        }
        if changed.is_empty() {
            tx.rollback().await?;
            return Ok(current);
        }
        let updated: UnitRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE units SET name = $2, areas = $3, duty_phone = $4, active = $5, \
             updated_at = now() WHERE code = $1 RETURNING {UNIT_COLUMNS}"
        )))
        .bind(code)
        .bind(&next.name)
        .bind(&next.areas)
        .bind(&next.duty_phone)
        .bind(next.active)
        .fetch_one(&mut *tx)
        .await?;
        let detail = changed.join(",");
        audit(&mut tx, actor, "unit", code, "updated", Some(&detail)).await?;
        finish(tx, dry_run).await?;
        Ok(updated.into())
    }

    /// The unit with this code; `NotFound` when there is none.
    pub async fn unit(&self, code: &str) -> Result<Unit, StoreError> {
        let mut tx = self.pool.begin().await?;
        let unit = fetch_unit(&mut tx, code, false).await?;
        tx.commit().await?;
        Ok(unit)
    }

    /// Every unit, by code.
    pub async fn list_units(&self) -> Result<Vec<Unit>, StoreError> {
        let rows: Vec<UnitRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {UNIT_COLUMNS} FROM units ORDER BY code"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Unit::from).collect())
    }

    /// Deletes a unit no ticket names. The unit's row stays locked while the tickets are
    /// counted, so a concurrent dispatch either lands first (and is counted) or finds no
    /// unit.
    pub async fn delete_unit(&self, code: &str, actor: &str) -> Result<UnitRemoval, StoreError> {
        let mut tx = self.pool.begin().await?;
        let unit = fetch_unit(&mut tx, code, true).await?;
        let (open, closed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status <> 'closed'), \
                    count(*) FILTER (WHERE status = 'closed') \
             FROM tickets WHERE responsible_unit = $1",
        )
        .bind(code)
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 || closed > 0 {
            tx.rollback().await?;
            return Ok(if open > 0 {
                UnitRemoval::OpenTickets(open)
            } else {
                UnitRemoval::ClosedTickets(closed)
            });
        }
        sqlx::query("DELETE FROM units WHERE code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, actor, "unit", code, "deleted", None).await?;
        tx.commit().await?;
        Ok(UnitRemoval::Deleted(unit))
    }

    /// The household file with this account number; `NotFound` when there is none.
    pub async fn customer_by_account(&self, account: &str) -> Result<Customer, StoreError> {
        sqlx::query_as::<_, CustomerRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE account_number = $1"
        )))
        .bind(account)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("customer account {account}")))?
        .try_into()
    }

    /// Up to `limit` households matching `query` with an id above `after`, in id order.
    pub async fn search_customers(
        &self,
        query: &CustomerQuery,
        limit: u32,
        after: Option<i64>,
    ) -> Result<CustomerPage, StoreError> {
        let after = after.unwrap_or(0);
        // One more than asked tells whether there is a next page.
        let fetch = i64::from(limit) + 1;
        let select = |filter: &str| {
            format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE {filter} AND id > $2 \
                 ORDER BY id LIMIT $3"
            )
        };
        let rows: Vec<CustomerRow> = match query {
            CustomerQuery::Phone(number) => {
                sqlx::query_as(sqlx::AssertSqlSafe(select("phone_numbers @> ARRAY[$1]")))
                    .bind(number)
                    .bind(after)
                    .bind(fetch)
                    .fetch_all(&self.pool)
                    .await?
            }
            CustomerQuery::Account(account) => {
                sqlx::query_as(sqlx::AssertSqlSafe(select("account_number = $1")))
                    .bind(account)
                    .bind(after)
                    .bind(fetch)
                    .fetch_all(&self.pool)
                    .await?
            }
            CustomerQuery::Address { area, contains } => {
                sqlx::query_as(sqlx::AssertSqlSafe(select(
                    "area = $1 AND strpos(address, $4) > 0",
                )))
                .bind(area)
                .bind(after)
                .bind(fetch)
                .bind(contains)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut customers = rows
            .into_iter()
            .map(Customer::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = if customers.len() as i64 == fetch {
            customers.pop();
            customers.last().map(|c| c.id)
        } else {
            None
        };
        Ok(CustomerPage {
            customers,
            next_after,
        })
    }

    /// Starts an import of household files: everything it upserts becomes visible at once
    /// on [`CustomerImport::commit`], or not at all.
    pub async fn begin_customer_import(&self, actor: &str) -> Result<CustomerImport, StoreError> {
        Ok(CustomerImport {
            tx: self.pool.begin().await?,
            actor: actor.to_owned(),
        })
    }
}

/// Commits, or rolls back a dry run.
async fn finish(tx: Transaction<'_, Postgres>, dry_run: bool) -> Result<(), StoreError> {
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(())
}

async fn fetch_unit(
    tx: &mut Transaction<'_, Postgres>,
    code: &str,
    for_update: bool,
) -> Result<Unit, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<UnitRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {UNIT_COLUMNS} FROM units WHERE code = $1{lock}"
    )))
    .bind(code)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(Unit::from)
        .ok_or_else(|| StoreError::NotFound(format!("unit {code}")))
}

/// An import of household files in progress: one transaction, idempotent on the account
/// number. Dropped without `commit`, it changes nothing.
pub struct CustomerImport {
    tx: Transaction<'static, Postgres>,
    actor: String,
}

impl std::fmt::Debug for CustomerImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerImport")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl CustomerImport {
    /// Creates the households whose account number is new, changes those whose fields
    /// differ, leaves the others untouched; audits each created or changed file with the
    /// fields that changed. One statement for the whole batch. Account numbers must be
    /// unique within `batch` (phone numbers must not contain commas).
    pub async fn upsert(&mut self, batch: &[NewCustomer]) -> Result<Vec<Upserted>, StoreError> {
        let mut seen = HashSet::with_capacity(batch.len());
        if let Some(twice) = batch.iter().find(|c| !seen.insert(&c.account_number)) {
            return Err(StoreError::Invalid {
                field: "account_number",
                reason: format!("{} appears twice in one batch", twice.account_number),
            });
        }
        let column = |f: fn(&NewCustomer) -> String| batch.iter().map(f).collect::<Vec<_>>();
        let special: Vec<Option<&str>> = batch
            .iter()
            .map(|c| c.special_group.map(SpecialGroup::code))
            .collect();
        let changed: Vec<(String, bool)> = sqlx::query_as(UPSERT_CUSTOMERS)
            .bind(column(|c| c.account_number.clone()))
            .bind(column(|c| c.name.clone()))
            .bind(column(|c| c.phone_numbers.join(",")))
            .bind(column(|c| c.address.clone()))
            .bind(column(|c| c.area.clone()))
            .bind(special)
            .bind(&self.actor)
            .fetch_all(&mut *self.tx)
            .await?;
        let changed: std::collections::HashMap<String, bool> = changed.into_iter().collect();
        Ok(batch
            .iter()
            .map(|c| match changed.get(&c.account_number) {
                Some(true) => Upserted::Created,
                Some(false) => Upserted::Updated,
                None => Upserted::Unchanged,
            })
            .collect())
    }

    /// Makes everything upserted visible, or with `dry_run` undoes it.
    pub async fn finish(self, dry_run: bool) -> Result<(), StoreError> {
        finish(self.tx, dry_run).await
    }
}

/// `$1`…`$6`: the batch's columns (phones comma-joined), `$7`: the actor. Returns the
/// account numbers created (true) or changed (false); unchanged rows are not returned.
const UPSERT_CUSTOMERS: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        AS t(account_number, name, phones, address, area, special_group)
), old AS (
    SELECT c.account_number, c.name, c.phone_numbers, c.address, c.area, c.special_group
    FROM customers c JOIN input USING (account_number)
), up AS (
    INSERT INTO customers (account_number, name, phone_numbers, address, area, special_group)
    SELECT account_number, name, string_to_array(phones, ','), address, area, special_group
    FROM input
    ON CONFLICT (account_number) DO UPDATE SET
        name = EXCLUDED.name, phone_numbers = EXCLUDED.phone_numbers,
        address = EXCLUDED.address, area = EXCLUDED.area,
        special_group = EXCLUDED.special_group, updated_at = now()
    WHERE (customers.name, customers.phone_numbers, customers.address, customers.area,
           customers.special_group)
        IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.phone_numbers, EXCLUDED.address,
                          EXCLUDED.area, EXCLUDED.special_group)
    RETURNING account_number, name, phone_numbers, address, area, special_group,
        (xmax = 0) AS created
), audit AS (
    INSERT INTO master_data_events (actor, entity, key, action, detail)
    SELECT $7, 'customer', up.account_number,
        CASE WHEN up.created THEN 'created' ELSE 'updated' END,
        CASE WHEN NOT up.created THEN array_to_string(ARRAY[
            CASE WHEN old.name IS DISTINCT FROM up.name THEN 'name' END,
            CASE WHEN old.phone_numbers IS DISTINCT FROM up.phone_numbers
                THEN 'phone_numbers' END,
            CASE WHEN old.address IS DISTINCT FROM up.address THEN 'address' END,
            CASE WHEN old.area IS DISTINCT FROM up.area THEN 'area' END,
            CASE WHEN old.special_group IS DISTINCT FROM up.special_group
                THEN 'special_group' END], ',') END
    FROM up LEFT JOIN old USING (account_number)
)
SELECT account_number, created FROM up";
