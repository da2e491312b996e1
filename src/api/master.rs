//! `hotline.v1.Admin`'s master data: responsible units (admin tokens only) and household
//! files (read by admin and agent tokens, written by admin tokens). Checks every field —
//! errors and rejected rows name the field —, maps between the wire messages and the
//! store's records, and logs who changed what (never a phone number). SQL and the audit
//! trail are the store's.

use super::auth::Caller;
use super::pb;
use super::requests::{page_size_of, phone_problem, text_problem};
use super::tickets::{caller, invalid, timestamp};
use crate::store::{
    Customer, CustomerQuery, NewCustomer, SpecialGroup, Store, StoreError, Unit, UnitFields,
    UnitPatch, UnitRemoval, Upserted,
};
use std::collections::HashMap;
use tonic::{Request, Response, Status, Streaming};

/// Rows upserted per statement: big enough that a 200,000-row import is a few hundred
/// round trips, small enough to keep each statement's memory modest.
const UPSERT_BATCH: usize = 1000;
const MAX_AREAS: usize = 100;
const MAX_PHONES: usize = 8;
const UNIT_FIELDS: [&str; 4] = ["name", "areas", "duty_phone", "active"];

/// A field at fault and why, before it becomes a status or a rejected row.
struct Fault {
    field: &'static str,
    reason: String,
}

fn fault(field: &'static str, reason: impl Into<String>) -> Fault {
    Fault {
        field,
        reason: reason.into(),
    }
}

impl Fault {
    fn status(self, prefix: &str) -> Status {
        invalid(&format!("{prefix}.{}", self.field), self.reason)
    }
}

fn text(value: &str, field: &'static str, max: usize, required: bool) -> Result<String, Fault> {
    let value = value.trim();
    match text_problem(value, max, required) {
        Some(reason) => Err(fault(field, reason)),
        None => Ok(value.to_owned()),
    }
}

/// A supply area as household files and units name it.
fn area_problem(area: &str) -> Option<&'static str> {
    if area.is_empty() || area.chars().count() > 64 {
        Some("an area is 1 to 64 characters")
    } else if area.chars().any(|c| c.is_control() || c == ',' || c == ';') {
        Some("an area must not contain control characters, commas or semicolons")
    } else {
        None
    }
}

fn area(value: &str, field: &'static str) -> Result<String, Fault> {
    let value = value.trim();
    match area_problem(value) {
        Some(reason) => Err(fault(field, format!("{value:?}: {reason}"))),
        None => Ok(value.to_owned()),
    }
}

/// Only admin tokens may manage units and write household files; returns the audit name.
fn require_admin<T>(request: &Request<T>, what: &str) -> Result<String, Status> {
    match caller(request)? {
        admin @ Caller::Admin { .. } => Ok(admin.actor()),
        _ => Err(Status::permission_denied(format!(
            "only admin tokens may {what}; use a token with role \"admin\""
        ))),
    }
}

/// Household files hold personal data: admin and agent tokens may read them, units and
/// integrations may not.
fn require_reader<T>(request: &Request<T>) -> Result<(), Status> {
    match caller(request)? {
        Caller::Admin { .. } | Caller::Agent { .. } => Ok(()),
        _ => Err(Status::permission_denied(
            "only admin and agent tokens may read household files",
        )),
    }
}

fn store_status(err: StoreError, prefix: &str) -> Status {
    match err {
        err @ StoreError::NotFound(_) => Status::not_found(err.to_string()),
        StoreError::Conflict(what) => Status::already_exists(format!("{what} already taken")),
        StoreError::Invalid { field, reason } => invalid(&format!("{prefix}.{field}"), reason),
        err @ StoreError::Unavailable(_) => {
            tracing::warn!(error = %err, "store unavailable");
            Status::unavailable(err.to_string())
        }
        err @ StoreError::Other(_) => {
            tracing::error!(error = %err, "master data store failed");
            Status::internal(format!("{err}; see the hotlined log"))
        }
    }
}

fn duty_phone(value: &str) -> Result<Option<String>, Fault> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let is_uri = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|scheme| value.starts_with(scheme));
    let good = if is_uri {
        value.len() <= 200 && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    } else {
        phone_problem(value).is_none()
    };
    if good {
        Ok(Some(value.to_owned()))
    } else {
        Err(fault(
            "duty_phone",
            "give a sip:, sips: or tel: URI (at most 200 characters, no spaces) or a number \
             of 3 to 20 digits, optionally starting with +",
        ))
    }
}

fn unit_areas(areas: &[String]) -> Result<Vec<String>, Fault> {
    if areas.len() > MAX_AREAS {
        return Err(fault("areas", format!("at most {MAX_AREAS} areas")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(areas.len());
    for a in areas {
        let a = area(a, "areas")?;
        if checked.contains(&a) {
            return Err(fault("areas", format!("{a:?} is listed twice")));
        }
        checked.push(a);
    }
    Ok(checked)
}

fn unit_code(code: &str) -> Result<String, Fault> {
    if crate::config::is_unit_code(code) {
        Ok(code.to_owned())
    } else {
        Err(fault(
            "code",
            "must be a unit code: 1 to 40 lowercase letters, digits and _",
        ))
    }
}

fn unit_fields(unit: &pb::Unit) -> Result<UnitFields, Fault> {
    Ok(UnitFields {
        code: unit_code(&unit.code)?,
        name: text(&unit.name, "name", 100, true)?,
        areas: unit_areas(&unit.areas)?,
        duty_phone: duty_phone(&unit.duty_phone)?,
        active: unit.active,
    })
}

/// The patch of an `UpdateUnit`: the fields of `update_mask` (all when empty), checked.
fn unit_patch(unit: &pb::Unit, mask: &str) -> Result<UnitPatch, Status> {
    let fields: Vec<&str> = if mask.trim().is_empty() {
        UNIT_FIELDS.to_vec()
    } else {
        mask.split(',').map(str::trim).collect()
    };
    let mut patch = UnitPatch::default();
    for field in fields {
        let checked = match field {
            "name" => text(&unit.name, "name", 100, true).map(|v| patch.name = Some(v)),
            "areas" => unit_areas(&unit.areas).map(|v| patch.areas = Some(v)),
            "duty_phone" => duty_phone(&unit.duty_phone).map(|v| patch.duty_phone = Some(v)),
            "active" => {
                patch.active = Some(unit.active);
                Ok(())
            }
            other => {
                return Err(invalid(
                    "update_mask",
                    format!("{other:?} cannot be changed; name some of {UNIT_FIELDS:?}"),
                ));
            }
        };
        checked.map_err(|f| f.status("unit"))?;
    }
    Ok(patch)
}

fn unit_to_proto(unit: Unit) -> pb::Unit {
    pb::Unit {
        code: unit.code,
        name: unit.name,
        areas: unit.areas,
        duty_phone: unit.duty_phone.unwrap_or_default(),
        active: unit.active,
        created_at: Some(timestamp(unit.created_at)),
        updated_at: Some(timestamp(unit.updated_at)),
    }
}

fn account_number(value: &str, field: &'static str) -> Result<String, Fault> {
    let value = value.trim();
    let good = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if good {
        Ok(value.to_owned())
    } else {
        Err(fault(
            field,
            "must be 1 to 32 letters, digits, - and _ (the utility's account number)",
        ))
    }
}

/// A household file as the store takes it, every field checked.
fn new_customer(c: &pb::Customer) -> Result<NewCustomer, Fault> {
    let account_number = account_number(&c.account_number, "account_number")?;
    let name = text(&c.name, "name", 100, true)?;
    if c.phone_numbers.len() > MAX_PHONES {
        return Err(fault(
            "phone_numbers",
            format!("at most {MAX_PHONES} numbers"),
        ));
    }
    let mut phone_numbers: Vec<String> = Vec::with_capacity(c.phone_numbers.len());
    for number in &c.phone_numbers {
        let number = number.trim();
        if let Some(reason) = phone_problem(number) {
            return Err(fault("phone_numbers", format!("{number:?} {reason}")));
        }
        if phone_numbers.iter().any(|n| n == number) {
            return Err(fault("phone_numbers", format!("{number} is listed twice")));
        }
        phone_numbers.push(number.to_owned());
    }
    let address = text(&c.address, "address", 200, true)?;
    let area = area(&c.area, "area")?;
    let special_group = match c.special_group.trim() {
        "" => None,
        code => Some(SpecialGroup::from_code(code).ok_or_else(|| {
            let codes: Vec<&str> = SpecialGroup::ALL.iter().map(|g| g.code()).collect();
            fault(
                "special_group",
                format!("{code:?} is not a special group; give one of {codes:?} or leave it empty"),
            )
        })?),
    };
    Ok(NewCustomer {
        account_number,
        name,
        phone_numbers,
        address,
        area,
        special_group,
    })
}

fn customer_to_proto(c: Customer) -> pb::Customer {
    pb::Customer {
        id: c.id,
        account_number: c.account_number,
        name: c.name,
        phone_numbers: c.phone_numbers,
        address: c.address,
        area: c.area,
        special_group: c
            .special_group
            .map(|g| g.code().to_owned())
            .unwrap_or_default(),
    }
}

pub(super) async fn create_unit(
    store: &Store,
    request: Request<pb::CreateUnitRequest>,
) -> Result<Response<pb::Unit>, Status> {
    let actor = require_admin(&request, "manage units")?;
    let r = request.into_inner();
    let unit = r.unit.ok_or_else(|| invalid("unit", "required"))?;
    let fields = unit_fields(&unit).map_err(|f| f.status("unit"))?;
    let created = store
        .create_unit(&fields, &actor, r.validate_only)
        .await
        .map_err(|err| store_status(err, "unit"))?;
    if !r.validate_only {
        tracing::info!(by = %actor, unit = %created.code, "unit created");
    }
    Ok(Response::new(unit_to_proto(created)))
}

pub(super) async fn update_unit(
    store: &Store,
    request: Request<pb::UpdateUnitRequest>,
) -> Result<Response<pb::Unit>, Status> {
    let actor = require_admin(&request, "manage units")?;
    let r = request.into_inner();
    let unit = r.unit.ok_or_else(|| invalid("unit", "required"))?;
    let code = unit_code(&unit.code).map_err(|f| f.status("unit"))?;
    let patch = unit_patch(&unit, &r.update_mask)?;
    let updated = store
        .update_unit(&code, &patch, &actor, r.validate_only)
        .await
        .map_err(|err| store_status(err, "unit"))?;
    if !r.validate_only {
        tracing::info!(by = %actor, unit = %code, "unit updated");
    }
    Ok(Response::new(unit_to_proto(updated)))
}

pub(super) async fn list_units(
    store: &Store,
    request: Request<pb::ListUnitsRequest>,
) -> Result<Response<pb::ListUnitsResponse>, Status> {
    require_admin(&request, "manage units")?;
    let units = store
        .list_units()
        .await
        .map_err(|err| store_status(err, "unit"))?;
    Ok(Response::new(pb::ListUnitsResponse {
        units: units.into_iter().map(unit_to_proto).collect(),
    }))
}

pub(super) async fn delete_unit(
    store: &Store,
    request: Request<pb::DeleteUnitRequest>,
) -> Result<Response<pb::Unit>, Status> {
    let actor = require_admin(&request, "manage units")?;
    let code = unit_code(&request.into_inner().code).map_err(|f| f.status("unit"))?;
    let removal = store
        .delete_unit(&code, &actor)
        .await
        .map_err(|err| store_status(err, "unit"))?;
    match removal {
        UnitRemoval::Deleted(unit) => {
            tracing::info!(by = %actor, unit = %code, "unit deleted");
            Ok(Response::new(unit_to_proto(unit)))
        }
        UnitRemoval::OpenTickets(open) => Err(Status::failed_precondition(format!(
            "unit {code} has {open} open ticket(s) dispatched to it; close or dispatch them \
             elsewhere first, or set the unit inactive with UpdateUnit"
        ))),
        UnitRemoval::ClosedTickets(closed) => Err(Status::failed_precondition(format!(
            "unit {code} is named by {closed} closed ticket(s), whose history keeps its code; \
             set the unit inactive with UpdateUnit instead"
        ))),
    }
}

pub(super) async fn get_customer(
    store: &Store,
    request: Request<pb::GetCustomerRequest>,
) -> Result<Response<pb::Customer>, Status> {
    require_reader(&request)?;
    let account = account_number(&request.into_inner().account_number, "account_number")
        .map_err(|f| invalid(f.field, f.reason))?;
    let customer = store
        .customer_by_account(&account)
        .await
        .map_err(|err| store_status(err, "customer"))?;
    Ok(Response::new(customer_to_proto(customer)))
}

/// `next_page_token` of a search: the last id shown, so pages stay stable while files are
/// added.
fn page_token(after: i64) -> String {
    format!("c{after}")
}

fn search_query(r: &pb::SearchCustomersRequest) -> Result<CustomerQuery, Status> {
    let given = [&r.phone, &r.account_number, &r.address]
        .iter()
        .filter(|v| !v.trim().is_empty())
        .count();
    if given != 1 {
        return Err(invalid(
            "phone",
            "give exactly one of phone, account_number and address",
        ));
    }
    if !r.phone.trim().is_empty() {
        let phone = r.phone.trim();
        if let Some(reason) = phone_problem(phone) {
            return Err(invalid("phone", reason));
        }
        return Ok(CustomerQuery::Phone(phone.to_owned()));
    }
    if !r.account_number.trim().is_empty() {
        let account = account_number(&r.account_number, "account_number")
            .map_err(|f| invalid(f.field, f.reason))?;
        return Ok(CustomerQuery::Account(account));
    }
    let area = area(&r.area, "area").map_err(|f| {
        invalid(
            f.field,
            format!(
                "{}; an address search needs the area to search in",
                f.reason
            ),
        )
    })?;
    let contains =
        text(&r.address, "address", 200, true).map_err(|f| invalid(f.field, f.reason))?;
    Ok(CustomerQuery::Address { area, contains })
}

pub(super) async fn search_customers(
    store: &Store,
    request: Request<pb::SearchCustomersRequest>,
) -> Result<Response<pb::SearchCustomersResponse>, Status> {
    require_reader(&request)?;
    let r = request.into_inner();
    let query = search_query(&r)?;
    let limit = page_size_of(r.page_size)?;
    let after = match r.page_token.as_str() {
        "" => None,
        token => Some(
            token
                .strip_prefix('c')
                .and_then(|id| id.parse::<i64>().ok())
                .ok_or_else(|| invalid("page_token", "malformed; pass next_page_token as given"))?,
        ),
    };
    let page = store
        .search_customers(&query, limit, after)
        .await
        .map_err(|err| store_status(err, "customer"))?;
    Ok(Response::new(pb::SearchCustomersResponse {
        customers: page.customers.into_iter().map(customer_to_proto).collect(),
        next_page_token: page.next_after.map(page_token).unwrap_or_default(),
    }))
}

/// The running tally of an `UpsertCustomers` stream.
#[derive(Default)]
struct Tally {
    response: pb::UpsertCustomersResponse,
    /// Account number → the row that first gave it.
    seen: HashMap<String, u64>,
    pending: Vec<NewCustomer>,
}

impl Tally {
    fn reject(&mut self, index: u64, account_number: &str, fault: Fault) {
        self.response.rejected += 1;
        self.response.rejects.push(pb::RejectedCustomer {
            index,
            account_number: account_number.to_owned(),
            field: fault.field.to_owned(),
            reason: fault.reason,
        });
    }

    fn take(&mut self, index: u64, row: &pb::Customer) {
        let new = match new_customer(row) {
            Ok(new) => new,
            Err(fault) => return self.reject(index, &row.account_number, fault),
        };
        if let Some(first) = self.seen.get(&new.account_number) {
            let reason = format!(
                "{} is also in row {first} of this import; give each account once",
                new.account_number
            );
            return self.reject(index, &row.account_number, fault("account_number", reason));
        }
        self.seen.insert(new.account_number.clone(), index);
        self.pending.push(new);
    }

    fn count(&mut self, outcomes: Vec<Upserted>) {
        for outcome in outcomes {
            match outcome {
                Upserted::Created => self.response.created += 1,
                Upserted::Updated => self.response.updated += 1,
                Upserted::Unchanged => self.response.unchanged += 1,
            }
        }
    }
}

pub(super) async fn upsert_customers(
    store: &Store,
    request: Request<Streaming<pb::UpsertCustomersRequest>>,
) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
    let actor = require_admin(&request, "write household files")?;
    let mut stream = request.into_inner();
    let mut import = store
        .begin_customer_import(&actor)
        .await
        .map_err(|err| store_status(err, "customer"))?;
    let mut tally = Tally::default();
    let mut dry_run = None;
    let mut index = 0u64;
    while let Some(message) = stream.message().await? {
        if *dry_run.get_or_insert(message.dry_run) != message.dry_run {
            return Err(invalid(
                "dry_run",
                "must be the same in every message of the stream",
            ));
        }
        for row in &message.customers {
            tally.take(index, row);
            index += 1;
        }
        if tally.pending.len() >= UPSERT_BATCH {
            let outcomes = import
                .upsert(&std::mem::take(&mut tally.pending))
                .await
                .map_err(|err| store_status(err, "customer"))?;
            tally.count(outcomes);
        }
    }
    if !tally.pending.is_empty() {
        let outcomes = import
            .upsert(&std::mem::take(&mut tally.pending))
            .await
            .map_err(|err| store_status(err, "customer"))?;
        tally.count(outcomes);
    }
    let dry_run = dry_run.unwrap_or(false);
    import
        .finish(dry_run)
        .await
        .map_err(|err| store_status(err, "customer"))?;
    let mut response = tally.response;
    response.dry_run = dry_run;
    tracing::info!(
        by = %actor, dry_run, rows = index, created = response.created,
        updated = response.updated, unchanged = response.unchanged,
        rejected = response.rejected, "household files upserted"
    );
    Ok(Response::new(response))
}
