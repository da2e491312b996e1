//! The records around tickets: responsible units, customer files (一户一档) and call rows,
//! with the look-ups a screen pop needs (who is calling, their recent calls).

use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Special groups registered for priority handling (hotline-rules §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialGroup {
    ElderlyAlone,
    Disabled,
    Other,
}

impl SpecialGroup {
    /// Every group, in the order the rules list them.
    pub const ALL: [SpecialGroup; 3] = [
        SpecialGroup::ElderlyAlone,
        SpecialGroup::Disabled,
        SpecialGroup::Other,
    ];

    /// The group's code in the database and on the wire.
    pub fn code(self) -> &'static str {
        match self {
            SpecialGroup::ElderlyAlone => "elderly_alone",
            SpecialGroup::Disabled => "disabled",
            SpecialGroup::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<SpecialGroup> {
        SpecialGroup::ALL.into_iter().find(|g| g.code() == code)
    }
}

/// A household's file.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: i64,
    pub account_number: String,
    pub name: String,
    pub phone_numbers: Vec<String>,
    pub address: String,
    pub area: String,
    pub special_group: Option<SpecialGroup>,
}

#[derive(sqlx::FromRow)]
pub(super) struct CustomerRow {
    id: i64,
    account_number: String,
    name: String,
    phone_numbers: Vec<String>,
    address: String,
    area: String,
    special_group: Option<String>,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> Result<Customer, StoreError> {
        let special_group = match row.special_group.as_deref() {
            None => None,
            Some(code) => Some(SpecialGroup::from_code(code).ok_or_else(|| {
                StoreError::Other(format!(
                    "customer {} holds an unknown special group {code:?}",
                    row.id
                ))
            })?),
        };
        Ok(Customer {
            id: row.id,
            account_number: row.account_number,
            name: row.name,
            phone_numbers: row.phone_numbers,
            address: row.address,
            area: row.area,
            special_group,
        })
    }
}

/// A new household file.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub account_number: String,
    pub name: String,
    pub phone_numbers: Vec<String>,
    pub address: String,
    pub area: String,
    pub special_group: Option<SpecialGroup>,
}

impl Store {
    /// Creates or renames a responsible unit.
    pub async fn upsert_unit(&self, code: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO units (code, name) VALUES ($1, $2) \
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
        )
        .bind(code)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Opens a household file; its account number must be new.
    pub async fn create_customer(&self, new: &NewCustomer) -> Result<Customer, StoreError> {
        sqlx::query_as::<_, CustomerRow>(
            "INSERT INTO customers (account_number, name, phone_numbers, address, area, \
               special_group) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, account_number, name, phone_numbers, address, area, special_group",
        )
        .bind(&new.account_number)
        .bind(&new.name)
        .bind(&new.phone_numbers)
        .bind(&new.address)
        .bind(&new.area)
        .bind(new.special_group.map(SpecialGroup::code))
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    /// Screen pop: the households that list this phone number.
    pub async fn customers_by_phone(&self, number: &str) -> Result<Vec<Customer>, StoreError> {
        sqlx::query_as::<_, CustomerRow>(
            "SELECT id, account_number, name, phone_numbers, address, area, special_group \
             FROM customers WHERE phone_numbers @> ARRAY[$1] ORDER BY id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Customer::try_from)
        .collect()
    }

    /// Screen pop: how many times this number called since `since`.
    pub async fn count_calls_from(
        &self,
        caller_number: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM calls WHERE caller_number = $1 AND arrived_at >= $2",
        )
        .bind(caller_number)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }
}
