//! Logging: the `tracing` subscriber (human or JSON lines on stderr) and phone-number masking.
//!
//! Phone numbers must never appear unmasked in a log line. Call sites wrap numbers in
//! [`Masked`]; as a second line of defence every formatted line passes through
//! [`MaskingMakeWriter`], which masks any digit run that looks like a phone number.
//!
//! Owns the global subscriber and the masking rules; must not decide what gets logged.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::ops::Range;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, serde::Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "invalid log filter {filter:?}: {reason}; write a level such as \"info\" or pairs such as \"hotline=debug,info\""
    )]
    Filter { filter: String, reason: String },
    #[error("a global logger is already installed: {0}; call logging::init once, at start-up")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber: `format` lines on stderr, filtered by `filter` (a
/// `tracing` filter such as `info` or `hotline=debug,info`), with phone numbers masked.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let ansi = format == LogFormat::Human && io::stderr().is_terminal();
    let dispatch = dispatch(format, filter, ansi, MaskingMakeWriter::new(io::stderr))?;
    // Also routes `log` records (from dependencies that use the `log` crate) into tracing.
    dispatch
        .try_init()
        .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))
}

/// The subscriber [`init`] installs, writing to any `writer`; tests use it with a buffer.
pub fn dispatch<W>(
    format: LogFormat,
    filter: &str,
    ansi: bool,
    writer: W,
) -> Result<tracing::Dispatch, LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_new(filter).map_err(|e| LoggingError::Filter {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_ansi(ansi)
        .with_writer(writer);
    Ok(match format {
        LogFormat::Human => tracing::Dispatch::new(builder.finish()),
        LogFormat::Json => tracing::Dispatch::new(builder.json().finish()),
    })
}

/// Digit runs up to this length are extensions, short service numbers (`956100`) or
/// counters, and are left alone.
const MAX_UNMASKED_DIGITS: usize = 6;

/// Digit groups joined by separators are one phone number from this many digits: the
/// shortest Chinese number with its area code, and every mobile number.
const MIN_GROUPED_DIGITS: usize = 10;

/// Masks a phone number for logs: `13812341234` → `138****1234`, `+8613812341234` →
/// `+86138****1234`. Numbers of at most 6 digits (extensions, `956100`) stay. Separators are
/// kept (`138 1234 1234` → `138 **** 1234`). Text that is not just a number (a SIP URI, a
/// sentence) gets every phone-like digit run in it masked, as [`mask_phone_runs`] does.
pub fn mask_phone(number: &str) -> String {
    let body = number.strip_prefix('+').unwrap_or(number);
    let is_number = body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'(' | b')' | b'.'));
    if !is_number {
        return mask_phone_runs(number).into_owned();
    }
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let Some((head, tail)) = visible_digits(digits, body.len() != number.len()) else {
        return number.to_owned();
    };
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= head || seen > digits - tail {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// How many leading and trailing digits of an `n`-digit number stay visible, or `None` when
/// the number is short enough to stay whole. Eleven or more digits keep 3 and 4
/// (`138****1234`); shorter ones hide at least 4 digits; with a `+`, digits beyond eleven are
/// the country code and stay visible too (`+86138****1234`).
fn visible_digits(n: usize, plus: bool) -> Option<(usize, usize)> {
    if n <= MAX_UNMASKED_DIGITS {
        return None;
    }
    if plus && n > 11 {
        let country = (n - 11).min(3);
        return visible_digits(n - country, false).map(|(head, tail)| (head + country, tail));
    }
    if n >= 11 {
        return Some((3, 4));
    }
    let visible = n - 4;
    let tail = visible.min(4);
    Some((visible - tail, tail))
}

/// Shows a phone number masked: `tracing::info!(caller = %Masked(&number), "call")`.
#[derive(Debug, Clone, Copy)]
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_phone(self.0))
    }
}

/// Masks every phone-number-like digit run in `text`: 7 or more digits, optionally after a
/// `+`, standing alone. A run touching a letter or `_` is part of an identifier
/// (`GD20261122-000123`, `z9hG4bK1234567`) and a run after a `.` is a fraction
/// (`12:00:30.123456789`), and both stay; so do UUIDs. A number written in groups joined by
/// single spaces or hyphens (`138-1234-5678`, `+86 138 1234 5678`, `0571-8888-1234`) counts
/// as one number when every group after the first has at least 3 digits and the groups hold
/// at least 10 digits (a number with its area code), so dates (`2026-11-25`) and lists of
/// extensions (`1001 1002`) stay.
pub fn mask_phone_runs(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let uuids = uuid_ranges(bytes);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let run_end = digit_run_end(bytes, start);
        let chain_end = grouped_number_end(bytes, run_end);
        // A grouped number that is not itself part of something else is masked as a whole;
        // otherwise its first run is judged alone, as any other run.
        let chain_digits = bytes[start..chain_end]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .count();
        let end = if chain_end > run_end
            && chain_digits >= MIN_GROUPED_DIGITS
            && stands_alone(bytes, start, chain_end)
        {
            chain_end
        } else {
            run_end
        };
        i = end;
        let digits = bytes[start..end]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .count();
        if digits <= MAX_UNMASKED_DIGITS
            || uuids.iter().any(|u| u.contains(&start))
            || !stands_alone(bytes, start, end)
        {
            continue;
        }
        let plus = start > 0 && bytes[start - 1] == b'+';
        let Some((head, tail)) = visible_digits(digits, plus) else {
            continue;
        };
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        // Slicing at ASCII digits always falls on char boundaries.
        out.push_str(&text[copied..start]);
        let mut seen = 0;
        for &b in &bytes[start..end] {
            if b.is_ascii_digit() {
                seen += 1;
                let hidden = seen > head && seen <= digits - tail;
                out.push(if hidden { '*' } else { char::from(b) });
            } else {
                out.push(char::from(b));
            }
        }
        copied = end;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Where the digit run starting at `start` ends.
fn digit_run_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    end
}

/// Where a number written in groups (`138-1234-5678`) whose first group ends at `end`
/// ends: each further group follows one space or hyphen and has at least 3 digits.
fn grouped_number_end(bytes: &[u8], mut end: usize) -> usize {
    const MIN_GROUP: usize = 3;
    while end + 1 < bytes.len()
        && matches!(bytes[end], b' ' | b'-')
        && bytes[end + 1].is_ascii_digit()
    {
        let group_end = digit_run_end(bytes, end + 1);
        if group_end - (end + 1) < MIN_GROUP {
            break;
        }
        end = group_end;
    }
    end
}

/// Whether the digits at `start..end` (after an optional `+`) stand alone: not touching a
/// letter or `_` (an identifier), not after a `.` (a fraction, an address) and not before a
/// `.` and a digit.
fn stands_alone(bytes: &[u8], start: usize, end: usize) -> bool {
    let plus = start > 0 && bytes[start - 1] == b'+';
    let before = if plus { start - 1 } else { start };
    let joined_before = before > 0 && {
        let b = bytes[before - 1];
        b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
    };
    let joined_after = end < bytes.len() && {
        let b = bytes[end];
        b.is_ascii_alphanumeric()
            || b == b'_'
            || (b == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
    };
    !joined_before && !joined_after
}

/// Where `8-4-4-4-12` hex UUIDs are in `bytes`.
fn uuid_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let is_uuid_at = |start: usize| {
        let mut at = start;
        for (g, len) in GROUPS.iter().enumerate() {
            if g > 0 {
                if bytes[at] != b'-' {
                    return false;
                }
                at += 1;
            }
            if !bytes[at..at + len].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            at += len;
        }
        true
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    while start + LEN <= bytes.len() {
        if is_uuid_at(start) {
            ranges.push(start..start + LEN);
            start += LEN;
        } else {
            start += 1;
        }
    }
    ranges
}

/// Wraps a `MakeWriter` so that every line written through it is masked with
/// [`mask_phone_runs`] first.
#[derive(Debug, Clone)]
pub struct MaskingMakeWriter<M> {
    inner: M,
}

impl<M> MaskingMakeWriter<M> {
    pub fn new(inner: M) -> Self {
        MaskingMakeWriter { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter::new(self.inner.make_writer())
    }
}

/// Buffers output until a line is complete (or the writer is dropped, which the subscriber
/// does after each event), so that a number is never split across two writes unmasked.
pub struct MaskingWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        MaskingWriter {
            inner,
            pending: Vec::new(),
        }
    }

    fn write_masked(&mut self, upto: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner.write_all(mask_phone_runs(&text).as_bytes())
    }
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.write_masked(last_newline + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            // Nowhere to report a failed log write from a destructor; the line is lost.
            let _ = self.write_masked(self.pending.len());
        }
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn mask_phone_table() {
        let cases = [
            ("13812341234", "138****1234"),
            ("+8613812341234", "+86138****1234"),
            ("8613812341234", "861******1234"),
            ("057188881234", "057*****1234"),
            ("88881234", "****1234"),
            ("1234567", "****567"),
            ("956100", "956100"),
            ("1001", "1001"),
            ("", ""),
            ("138 1234 1234", "138 **** 1234"),
            ("138-1234-1234", "138-****-1234"),
            ("sip:13812341234@10.0.0.1", "sip:138****1234@10.0.0.1"),
            ("anonymous", "anonymous"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_phone(input), expected, "mask_phone({input:?})");
            assert_eq!(Masked(input).to_string(), expected, "Masked({input:?})");
        }
    }

    #[test]
    fn mask_phone_runs_table() {
        let cases = [
            ("call from 13812341234 ended", "call from 138****1234 ended"),
            ("caller=+8613812341234", "caller=+86138****1234"),
            ("\"caller\":\"13812341234\"", "\"caller\":\"138****1234\""),
            ("来电13812341234。", "来电138****1234。"),
            ("sip:13812341234@pbx", "sip:138****1234@pbx"),
            ("tel 0571-88881234", "tel 057*-****1234"),
            // Written with separators: one number, masked as a whole.
            (
                "call from 138-1234-5678 ended",
                "call from 138-****-5678 ended",
            ),
            ("caller +86 138 1234 5678.", "caller +86 138 **** 5678."),
            ("tel 0571-8888-1234", "tel 057*-****-1234"),
            ("account 6222 0212 3456 7890", "account 622* **** **** 7890"),
            (
                "\"digits\":\"138 1234 5678\"",
                "\"digits\":\"138 **** 5678\"",
            ),
            // Dates and short groups stay.
            ("due 2026-11-25 at 10", "due 2026-11-25 at 10"),
            ("ext 1001 1002", "ext 1001 1002"),
            ("number 13812341234.", "number 138****1234."),
            // Left alone: ticket numbers, timestamps, UUIDs, identifiers, fractions, short runs.
            ("ticket GD20261122-000123", "ticket GD20261122-000123"),
            (
                "2026-11-25T12:00:30.123456789Z",
                "2026-11-25T12:00:30.123456789Z",
            ),
            (
                "call_id=12345678-1234-1234-1234-123456789012",
                "call_id=12345678-1234-1234-1234-123456789012",
            ),
            ("branch=z9hG4bK1234567890", "branch=z9hG4bK1234567890"),
            ("x_13812341234", "x_13812341234"),
            ("pi=3.14159265", "pi=3.14159265"),
            ("ext 1001 queue 956100", "ext 1001 queue 956100"),
            ("127.0.0.1:50051", "127.0.0.1:50051"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(
                mask_phone_runs(input),
                expected,
                "mask_phone_runs({input:?})"
            );
        }
        assert!(matches!(mask_phone_runs("nothing here"), Cow::Borrowed(_)));
    }

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn log_through(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let dispatch = dispatch(
            format,
            "info",
            false,
            MaskingMakeWriter::new(buffer.clone()),
        )
        .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            // A call site that forgot Masked: the writer must still catch it.
            tracing::info!(
                caller = "13812341234",
                ticket = "GD20261122-000123",
                "call from +8613812341234 on extension 1001"
            );
            tracing::info!(caller = %Masked("13912345678"), "masked at the call site");
            tracing::debug!(caller = "13700000000", "filtered out");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn human_lines_are_masked() {
        let out = log_through(LogFormat::Human);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("caller=\"138****1234\""), "{out}");
        assert!(out.contains("+86138****1234 on extension 1001"), "{out}");
        assert!(out.contains("caller=139****5678"), "{out}");
        assert!(out.contains("GD20261122-000123"), "{out}");
        assert!(
            !out.contains("13812341234") && !out.contains("13912345678"),
            "{out}"
        );
        assert!(!out.contains("1370000"), "{out}");
    }

    #[test]
    fn json_lines_are_masked_and_stay_json() {
        let out = log_through(LogFormat::Json);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        let fields = &lines[0]["fields"];
        assert_eq!(fields["caller"], "138****1234");
        assert_eq!(fields["ticket"], "GD20261122-000123");
        assert_eq!(
            fields["message"],
            "call from +86138****1234 on extension 1001"
        );
        assert_eq!(lines[1]["fields"]["caller"], "139****5678");
        // The timestamp is intact: it still parses as RFC 3339.
        let timestamp = lines[0]["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    #[test]
    fn writer_masks_numbers_split_across_writes() {
        let buffer = Buffer::default();
        {
            let mut writer = MaskingWriter::new(buffer.clone());
            writer.write_all(b"first 1381234").unwrap();
            writer.write_all(b"1234 line\nsecond 139123").unwrap();
            writer.write_all(b"45678").unwrap();
        }
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "first 138****1234 line\nsecond 139****5678");
    }

    #[test]
    fn bad_filter_is_reported() {
        let error = dispatch(LogFormat::Human, "hotline=loud", false, io::sink).unwrap_err();
        assert!(error.to_string().contains("hotline=loud"), "{error}");
    }
}
