//! `hotlinectl import customers|units FILE.csv`: reads the file (see `table`), sends its
//! rows to the daemon's Admin API, shows progress on long imports, and ends with a summary
//! and the rejected rows with their reasons in a CSV file beside the input.
//!
//! Household files stream through `UpsertCustomers` (one transaction, idempotent on the
//! account number); units, being few, go one by one through `CreateUnit` / `UpdateUnit`,
//! compared with `ListUnits` first so unchanged units are left alone. The daemon checks
//! every field; this side rejects only rows it cannot read.

use super::table::{Column, Encoding, Row, decode, read_rows, split_list};
use super::{ClientOptions, CtlError, connect_admin};
use crate::api::pb;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// Rows per `UpsertCustomers` message.
const ROWS_PER_MESSAGE: usize = 500;
/// Imports with fewer rows show no progress.
const LONG_IMPORT_ROWS: usize = 5000;

/// The columns of a household file import, in their documented order.
pub const CUSTOMER_COLUMNS: &[Column] = &[
    Column {
        name: "account_number",
        aliases: &["户号", "用户编号", "客户编号"],
        required: true,
    },
    Column {
        name: "name",
        aliases: &["户名", "姓名", "用户名称"],
        required: true,
    },
    Column {
        name: "phone_numbers",
        aliases: &["phones", "电话", "联系电话"],
        required: true,
    },
    Column {
        name: "address",
        aliases: &["地址", "用户地址"],
        required: true,
    },
    Column {
        name: "area",
        aliases: &["片区", "供气区域", "供热区域", "区域"],
        required: true,
    },
    Column {
        name: "special_group",
        aliases: &["特殊群体"],
        required: false,
    },
];

/// The columns of a unit import, in their documented order.
pub const UNIT_COLUMNS: &[Column] = &[
    Column {
        name: "code",
        aliases: &["单位编码"],
        required: true,
    },
    Column {
        name: "name",
        aliases: &["单位名称"],
        required: true,
    },
    Column {
        name: "areas",
        aliases: &["服务片区"],
        required: false,
    },
    Column {
        name: "duty_phone",
        aliases: &["值班电话"],
        required: false,
    },
    Column {
        name: "active",
        aliases: &["启用"],
        required: false,
    },
];

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub encoding: Encoding,
    /// Check and count everything, change nothing.
    pub dry_run: bool,
    /// Where to write the rejected rows; default `<FILE stem>.rejects.csv` beside the file.
    pub rejects_file: Option<PathBuf>,
    /// Draw progress on stderr (when the import is long).
    pub progress: bool,
}

/// A row the import did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub key: String,
    pub field: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub file: PathBuf,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejected>,
    pub dry_run: bool,
    /// Where the rejected rows were written (none when every row was accepted).
    pub rejects_file: Option<PathBuf>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows: {} created, {} updated, {} unchanged, {} rejected",
            self.file.display(),
            self.rows,
            self.created,
            self.updated,
            self.unchanged,
            self.rejected.len()
        )?;
        if self.dry_run {
            write!(f, " (dry run: nothing was changed)")?;
        }
        if let Some(file) = &self.rejects_file {
            write!(f, "\nrejected rows and reasons: {}", file.display())?;
        }
        Ok(())
    }
}

fn read_file(
    path: &Path,
    options: &ImportOptions,
    columns: &[Column],
) -> Result<Vec<Row>, CtlError> {
    let bytes = std::fs::read(path).map_err(|err| CtlError::file("reading", path, err))?;
    let text = decode(&bytes, options.encoding, path)?;
    read_rows(&text, columns, path)
}

/// The line that first gave `key`, when an earlier row did; else notes `line` as its first.
fn first_line(seen: &mut HashMap<String, u64>, key: &str, line: u64) -> Option<u64> {
    match seen.get(key) {
        Some(&first) => Some(first),
        None => {
            seen.insert(key.to_owned(), line);
            None
        }
    }
}

fn unreadable(row: &Row, key: &str) -> Option<Rejected> {
    row.problem.as_ref().map(|reason| Rejected {
        line: row.line,
        key: key.to_owned(),
        field: "row".into(),
        reason: reason.clone(),
    })
}

/// Special groups as billing exports write them, to their codes; anything else goes to the
/// daemon as written (and is rejected there unless it is a code).
fn special_group_code(value: &str) -> String {
    match value {
        "独居老人" => "elderly_alone",
        "残疾人" | "残障人士" => "disabled",
        "其他" => "other",
        "无" | "否" => "",
        other => other,
    }
    .to_owned()
}

/// Imports household files from a CSV file: reads it whole, then connects.
pub async fn import_customers(
    daemon: &ClientOptions,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, CtlError> {
    let rows = read_file(path, options, CUSTOMER_COLUMNS)?;
    let mut client = connect_admin(daemon).await?;
    let mut summary = ImportSummary::new(path, rows.len(), options.dry_run);
    // The file line of each row sent, by its index in the stream.
    let mut lines = Vec::with_capacity(rows.len());
    let mut customers = Vec::with_capacity(rows.len());
    // Account number → the line that first gave it (the daemon would only know the row).
    let mut seen: HashMap<String, u64> = HashMap::with_capacity(rows.len());
    for row in rows {
        let v = &row.values;
        if let Some(rejected) = unreadable(&row, &v[0]) {
            summary.rejected.push(rejected);
            continue;
        }
        if let Some(first) = first_line(&mut seen, &v[0], row.line) {
            summary.rejected.push(Rejected {
                line: row.line,
                key: v[0].clone(),
                field: "account_number".into(),
                reason: format!("{} is also on line {first}; give each account once", v[0]),
            });
            continue;
        }
        lines.push(row.line);
        customers.push(pb::Customer {
            account_number: v[0].clone(),
            name: v[1].clone(),
            phone_numbers: split_list(&v[2]),
            address: v[3].clone(),
            area: v[4].clone(),
            special_group: special_group_code(&v[5]),
            ..Default::default()
        });
    }
    let sending = customers.len();
    let mut progress = Progress::new(options.progress, sending);
    let dry_run = options.dry_run;
    let mut messages: Vec<pb::UpsertCustomersRequest> = Vec::new();
    let mut rest = customers.into_iter().peekable();
    while rest.peek().is_some() || messages.is_empty() {
        messages.push(pb::UpsertCustomersRequest {
            customers: rest.by_ref().take(ROWS_PER_MESSAGE).collect(),
            dry_run,
        });
    }
    let stream = tokio_stream::iter(messages).map(move |message| {
        progress.advance(message.customers.len());
        message
    });
    let response = client
        .upsert_customers(stream)
        .await
        .map_err(|status| CtlError::api(&daemon.endpoint, status))?
        .into_inner();
    Progress::end_line(options.progress, sending);
    summary.created = response.created;
    summary.updated = response.updated;
    summary.unchanged = response.unchanged;
    for r in response.rejects {
        let line = usize::try_from(r.index)
            .ok()
            .and_then(|i| lines.get(i))
            .copied()
            .unwrap_or(0);
        summary.rejected.push(Rejected {
            line,
            key: r.account_number,
            field: r.field,
            reason: r.reason,
        });
    }
    summary.finish(options)?;
    Ok(summary)
}

fn active_flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" | "是" | "启用" => Some(true),
        "false" | "no" | "0" | "否" | "停用" => Some(false),
        _ => None,
    }
}

/// The field named by an INVALID_ARGUMENT message (`unit.name: required` → `name`).
fn field_of(message: &str) -> (String, String) {
    match message.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') => (
            field.strip_prefix("unit.").unwrap_or(field).to_owned(),
            reason.to_owned(),
        ),
        _ => ("row".into(), message.to_owned()),
    }
}

fn same_unit(stored: &pb::Unit, wanted: &pb::Unit) -> bool {
    stored.name == wanted.name
        && stored.areas == wanted.areas
        && stored.duty_phone == wanted.duty_phone
        && stored.active == wanted.active
}

/// Imports responsible units from a CSV file: reads it whole, then connects.
pub async fn import_units(
    daemon: &ClientOptions,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, CtlError> {
    let rows = read_file(path, options, UNIT_COLUMNS)?;
    let mut client = connect_admin(daemon).await?;
    let mut summary = ImportSummary::new(path, rows.len(), options.dry_run);
    let api = |status| CtlError::api(&daemon.endpoint, status);
    let stored: HashMap<String, pb::Unit> = client
        .list_units(pb::ListUnitsRequest {})
        .await
        .map_err(api)?
        .into_inner()
        .units
        .into_iter()
        .map(|u| (u.code.clone(), u))
        .collect();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let total = rows.len();
    let mut progress = Progress::new(options.progress, total);
    for row in rows {
        progress.advance(1);
        let v = &row.values;
        let reject = |field: &str, reason: String| Rejected {
            line: row.line,
            key: v[0].clone(),
            field: field.into(),
            reason,
        };
        if let Some(rejected) = unreadable(&row, &v[0]) {
            summary.rejected.push(rejected);
            continue;
        }
        if let Some(first) = first_line(&mut seen, &v[0], row.line) {
            let reason = format!("unit {} is also on line {first}; give each unit once", v[0]);
            summary.rejected.push(reject("code", reason));
            continue;
        }
        let Some(active) = active_flag(&v[4]) else {
            let reason = format!("{:?} is not true or false", v[4]);
            summary.rejected.push(reject("active", reason));
            continue;
        };
        let unit = pb::Unit {
            code: v[0].clone(),
            name: v[1].clone(),
            areas: split_list(&v[2]),
            duty_phone: v[3].clone(),
            active,
            ..Default::default()
        };
        let answer = match stored.get(&unit.code) {
            Some(current) if same_unit(current, &unit) => {
                summary.unchanged += 1;
                continue;
            }
            Some(_) => client
                .update_unit(pb::UpdateUnitRequest {
                    unit: Some(unit),
                    update_mask: String::new(),
                    validate_only: options.dry_run,
                })
                .await
                .map(|_| &mut summary.updated),
            None => client
                .create_unit(pb::CreateUnitRequest {
                    unit: Some(unit),
                    validate_only: options.dry_run,
                })
                .await
                .map(|_| &mut summary.created),
        };
        match answer {
            Ok(count) => *count += 1,
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::InvalidArgument | tonic::Code::AlreadyExists
                ) =>
            {
                let (field, reason) = field_of(status.message());
                summary.rejected.push(reject(&field, reason));
            }
            Err(status) => return Err(api(status)),
        }
    }
    Progress::end_line(options.progress, total);
    summary.finish(options)?;
    Ok(summary)
}

impl ImportSummary {
    fn new(path: &Path, rows: usize, dry_run: bool) -> ImportSummary {
        ImportSummary {
            file: path.to_owned(),
            rows: rows as u64,
            created: 0,
            updated: 0,
            unchanged: 0,
            rejected: Vec::new(),
            dry_run,
            rejects_file: None,
        }
    }

    /// Sorts the rejected rows by line and writes them to the rejects file.
    fn finish(&mut self, options: &ImportOptions) -> Result<(), CtlError> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        self.rejected.sort_by_key(|r| r.line);
        let path = options.rejects_file.clone().unwrap_or_else(|| {
            let stem = self
                .file
                .file_stem()
                .map_or("import".into(), |s| s.to_string_lossy());
            self.file.with_file_name(format!("{stem}.rejects.csv"))
        });
        let write_error = |err: csv::Error| {
            CtlError::Input(format!(
                "writing the rejected rows to {}: {err}; pass --rejects with a writable path",
                path.display()
            ))
        };
        let mut out = csv::Writer::from_path(&path).map_err(write_error)?;
        out.write_record(["line", "key", "field", "reason"])
            .map_err(write_error)?;
        for r in &self.rejected {
            out.write_record([r.line.to_string().as_str(), &r.key, &r.field, &r.reason])
                .map_err(write_error)?;
        }
        out.flush()
            .map_err(|err| CtlError::file("writing", &path, err))?;
        self.rejects_file = Some(path);
        Ok(())
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, a line every 10 % otherwise.
/// Shown only for imports of at least `LONG_IMPORT_ROWS` rows.
struct Progress {
    shown: bool,
    terminal: bool,
    total: usize,
    done: usize,
    last_drawn: Option<Instant>,
    last_tenth: usize,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Progress {
        Progress {
            shown: Progress::shows(enabled, total),
            terminal: std::io::stderr().is_terminal(),
            total,
            done: 0,
            last_drawn: None,
            last_tenth: 0,
        }
    }

    fn advance(&mut self, rows: usize) {
        self.done += rows;
        if !self.shown {
            return;
        }
        let percent = self.done * 100 / self.total.max(1);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let due = self
                .last_drawn
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
            if due || self.done == self.total {
                let filled = percent * 30 / 100;
                let _ = write!(
                    err,
                    "\r[{}{}] {percent:3}% {}/{} rows sent",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    self.done,
                    self.total
                );
                let _ = err.flush();
                self.last_drawn = Some(Instant::now());
            }
        } else if percent / 10 > self.last_tenth {
            self.last_tenth = percent / 10;
            let _ = writeln!(err, "{percent}% ({}/{} rows) sent", self.done, self.total);
        }
    }

    fn shows(enabled: bool, total: usize) -> bool {
        enabled && total >= LONG_IMPORT_ROWS
    }

    /// Ends the bar's line before the summary.
    fn end_line(enabled: bool, total: usize) {
        if Progress::shows(enabled, total) && std::io::stderr().is_terminal() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_flags_and_invalid_argument_fields() {
        assert_eq!(active_flag(""), Some(true));
        assert_eq!(active_flag("停用"), Some(false));
        assert_eq!(active_flag("FALSE"), Some(false));
        assert_eq!(active_flag("maybe"), None);
        assert_eq!(
            field_of("unit.duty_phone: give a sip: URI"),
            ("duty_phone".to_owned(), "give a sip: URI".to_owned())
        );
        assert_eq!(
            field_of("unit code x already taken"),
            ("row".to_owned(), "unit code x already taken".to_owned())
        );
    }

    #[test]
    fn summary_says_what_happened() {
        let mut summary = ImportSummary::new(Path::new("c.csv"), 3, true);
        summary.created = 2;
        summary.rejected.push(Rejected {
            line: 4,
            key: "A1".into(),
            field: "phone_numbers".into(),
            reason: "bad".into(),
        });
        summary.rejects_file = Some("c.rejects.csv".into());
        assert_eq!(
            summary.to_string(),
            "c.csv: 3 rows: 2 created, 0 updated, 0 unchanged, 1 rejected (dry run: nothing \
             was changed)\nrejected rows and reasons: c.rejects.csv"
        );
    }
}
