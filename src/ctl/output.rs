//! What the API commands print: a human table (or a block of labelled lines) by default, or
//! with `--json` one JSON document with stable field names for scripts. Also the one way an
//! API call's failure becomes a [`CtlError`], and the names enums and times are shown and
//! read by.
//!
//! Knows nothing of particular commands; each command group turns its answers into a value
//! implementing [`Render`].

use super::CtlError;
use crate::api::pb;
use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use std::fmt::Write as _;
use unicode_width::UnicodeWidthStr;

/// Something a command prints: as JSON (through serde) or for people.
pub trait Render: Serialize {
    /// The text for a terminal, ending with a newline.
    fn human(&self) -> String;
}

/// Prints `value` as pretty JSON or as its human form on stdout.
pub fn print<R: Render>(json: bool, value: &R) -> Result<(), CtlError> {
    if json {
        let text = serde_json::to_string_pretty(value)
            .map_err(|err| CtlError::Input(format!("encoding the answer as JSON: {err}")))?;
        println!("{text}");
    } else {
        print!("{}", value.human());
    }
    Ok(())
}

/// Awaits one unary API call: its message, or the daemon's status as an API error.
pub async fn call<T>(
    endpoint: &str,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CtlError> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(|status| CtlError::api(endpoint, status))
}

/// Columns with a header row, padded to the widest cell (CJK characters count double).
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, or `empty` on a line of its own when it has no rows.
    pub fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.width());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in cells.iter().zip(&widths) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.width()) + 2,
                ));
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// Labelled lines, one value each (`label:` padded); empty values are left out.
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub fn add(&mut self, label: &'static str, value: impl Into<String>) -> &mut Fields {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((label, value));
        }
        self
    }

    pub fn render(&self) -> String {
        let width = self.0.iter().map(|(l, _)| l.width()).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (label, value) in &self.0 {
            let _ = writeln!(out, "{:<width$} {value}", format!("{label}:"));
        }
        out
    }
}

/// `text` cut to `max` display columns, with `…` when cut; line breaks become spaces.
pub fn clip(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.width() <= max {
        return flat;
    }
    let mut out = String::new();
    for c in flat.chars() {
        if out.width() + c.to_string().width() >= max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// A protobuf enum of the API, shown and read by its value name without the type prefix,
/// in lowercase: `CATEGORY_SERVICE_APPLICATION` is `service_application`.
pub trait ProtoEnum: Sized + Copy + TryFrom<i32> + Into<i32> + Send + Sync + 'static {
    const PREFIX: &'static str;
    fn proto_name(self) -> &'static str;
}

macro_rules! proto_enums {
    ($($ty:ty => $prefix:literal),* $(,)?) => {
        $(impl ProtoEnum for $ty {
            const PREFIX: &'static str = $prefix;
            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
        })*
    };
}

proto_enums!(
    pb::Channel => "CHANNEL_",
    pb::Category => "CATEGORY_",
    pb::Status => "STATUS_",
    pb::ComplaintLevel => "COMPLAINT_LEVEL_",
    pb::Rating => "RATING_",
    pb::UrgeKind => "URGE_KIND_",
    pb::CallbackOutcome => "CALLBACK_OUTCOME_",
    pb::AgentState => "AGENT_STATE_",
    pb::LivePhase => "LIVE_PHASE_",
    pb::ReportGrouping => "REPORT_GROUPING_",
);

/// The name of enum value `value` (`repair`), empty for UNSPECIFIED, `unknown(N)` for a value
/// this build does not know.
pub fn name_of<E: ProtoEnum>(value: i32) -> String {
    match E::try_from(value) {
        Ok(_) if value == 0 => String::new(),
        Ok(known) => known
            .proto_name()
            .trim_start_matches(E::PREFIX)
            .to_lowercase(),
        Err(_) => format!("unknown({value})"),
    }
}

/// The value names of `E` a user may give (every one but UNSPECIFIED).
pub fn names_of<E: ProtoEnum>() -> Vec<String> {
    (1..64)
        .filter(|&v| E::try_from(v).is_ok())
        .map(name_of::<E>)
        .collect()
}

/// Reads an enum value by name, in any case, with `-` or `_`: for clap's `value_parser`.
pub fn parse_enum<E: ProtoEnum>(text: &str) -> Result<E, String> {
    let wanted = text.trim().replace('-', "_").to_lowercase();
    (1..64)
        .filter_map(|v| E::try_from(v).ok())
        .find(|e| name_of::<E>((*e).into()) == wanted)
        .ok_or_else(|| format!("expected one of: {}", names_of::<E>().join(", ")))
}

/// A timestamp as RFC 3339 in UTC (for JSON); `None` when unset.
pub fn rfc3339(at: Option<&prost_types::Timestamp>) -> Option<String> {
    utc(at).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `None` for an empty string (JSON `null` rather than `""` for what is not set).
pub fn non_empty(text: impl Into<String>) -> Option<String> {
    Some(text.into()).filter(|t| !t.is_empty())
}

/// A timestamp in the local time zone, to the minute (for tables); empty when unset.
pub fn local(at: Option<&prost_types::Timestamp>) -> String {
    utc(at)
        .map(|t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn utc(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

/// Reads an RFC 3339 time (`2026-12-01T08:00:00+08:00`): for clap's `value_parser`.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let at = DateTime::parse_from_rfc3339(text.trim()).map_err(|err| {
        format!("{err}; give an RFC 3339 time with its offset, e.g. 2026-12-01T08:00:00+08:00")
    })?;
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_cjk_cells_by_display_width() {
        let mut table = Table::new(&["NUMBER", "CALLER"]);
        table.row(vec!["GD1".into(), "王女士".into()]);
        table.row(vec!["GD20261201-000002".into(), "x".into()]);
        assert_eq!(
            table.render("none"),
            "NUMBER             CALLER\nGD1                王女士\nGD20261201-000002  x\n"
        );
        assert_eq!(Table::new(&["A"]).render("no rows"), "no rows\n");
    }

    #[test]
    fn enum_names_read_and_show_without_prefix() {
        assert_eq!(
            name_of::<pb::Category>(pb::Category::ServiceApplication as i32),
            "service_application"
        );
        assert_eq!(name_of::<pb::Category>(0), "");
        assert_eq!(name_of::<pb::Category>(99), "unknown(99)");
        assert_eq!(
            parse_enum::<pb::Category>("Service-Application"),
            Ok(pb::Category::ServiceApplication)
        );
        let err = parse_enum::<pb::Rating>("happy").unwrap_err();
        assert_eq!(
            err,
            "expected one of: satisfied, basically_satisfied, unsatisfied"
        );
        assert!(parse_enum::<pb::Rating>("unspecified").is_err());
    }

    #[test]
    fn times_read_with_offset_and_show_in_utc() {
        let at = parse_time("2026-12-01T08:00:00+08:00").unwrap();
        assert_eq!(rfc3339(Some(&at)).unwrap(), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(None), None);
        assert!(
            parse_time("2026-12-01 08:00")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }

    #[test]
    fn clipping_counts_display_columns() {
        assert_eq!(clip("燃气表不走字", 6), "燃气…");
        assert_eq!(clip("a\nb", 10), "a b");
    }
}
