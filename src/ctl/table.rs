//! Reading an import file: bytes in UTF-8 or GBK to text, then CSV (RFC 4180: quoted
//! fields may hold commas, quotes and line breaks) with a header row naming the columns, in
//! English or as Chinese billing exports name them. Columns the import does not know are
//! ignored; the order is free.

use super::CtlError;
use std::path::Path;

/// The character encoding of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte order mark.
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK (read as GB18030, its superset), common in Chinese billing exports.
    Gbk,
}

/// A column an import reads.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Other header names accepted for it.
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// One data row: its line in the file and one value per column (empty when the file has no
/// such column), or why it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub values: Vec<String>,
    pub problem: Option<String>,
}

/// The file's text. Invalid bytes are an error naming the line, never silently replaced.
pub fn decode(bytes: &[u8], encoding: Encoding, path: &Path) -> Result<String, CtlError> {
    let line_of = |text: &[u8]| text.iter().filter(|&&b| b == b'\n').count() + 1;
    match encoding {
        Encoding::Utf8 => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(bytes) {
                Ok(text) => Ok(text.to_owned()),
                Err(err) => Err(CtlError::Input(format!(
                    "{}: line {} is not UTF-8; files from Chinese billing systems are often \
                     GBK: pass --encoding gbk",
                    path.display(),
                    line_of(&bytes[..err.valid_up_to()])
                ))),
            }
        }
        Encoding::Gbk => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                let bad = text.find('\u{FFFD}').unwrap_or(0);
                return Err(CtlError::Input(format!(
                    "{}: line {} is not GBK; check the file's encoding (--encoding utf-8 for UTF-8)",
                    path.display(),
                    line_of(text[..bad].as_bytes())
                )));
            }
            Ok(text.into_owned())
        }
    }
}

fn header_matches(header: &str, column: &Column) -> bool {
    let header = header.trim().trim_start_matches('\u{FEFF}');
    header.eq_ignore_ascii_case(column.name) || column.aliases.contains(&header)
}

/// The rows of a CSV text whose header row names `columns`; a required column missing from
/// the header is an error.
pub fn read_rows(text: &str, columns: &[Column], path: &Path) -> Result<Vec<Row>, CtlError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|err| CtlError::Input(format!("{}: header row: {err}", path.display())))?
        .clone();
    let width = headers.len();
    let mut at = Vec::with_capacity(columns.len());
    for column in columns {
        let index = headers.iter().position(|h| header_matches(h, column));
        if index.is_none() && column.required {
            let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
            return Err(CtlError::Input(format!(
                "{}: the header row has no column {} (or {}); the first line must name the \
                 columns, e.g. {}",
                path.display(),
                column.name,
                column.aliases.join(", "),
                names.join(",")
            )));
        }
        at.push(index);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| CtlError::Input(format!("{}: {err}", path.display())))?;
        let line = record.position().map_or(0, |p| p.line());
        let problem = (record.len() != width).then(|| {
            format!(
                "the row has {} fields, the header {width}; quote fields that hold commas",
                record.len()
            )
        });
        let values = at
            .iter()
            .map(|index| {
                index
                    .and_then(|i| record.get(i))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        rows.push(Row {
            line,
            values,
            problem,
        });
    }
    Ok(rows)
}

/// A list in one field: `a;b`, also with the full-width `；` or `、`.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split([';', '；', '、'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        Column {
            name: "account_number",
            aliases: &["户号"],
            required: true,
        },
        Column {
            name: "note",
            aliases: &[],
            required: false,
        },
    ];

    #[test]
    fn headers_by_name_or_alias_in_any_order_and_quoted_fields() {
        let text = "其他,户号\nx,\"A-1\"\n\"a, \"\"b\"\"\nc\",A-2\nshort\n";
        let rows = read_rows(text, COLUMNS, Path::new("f.csv")).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].values, ["A-1", ""]);
        assert_eq!((rows[0].line, rows[1].line, rows[2].line), (2, 3, 5));
        assert_eq!(rows[1].values[0], "A-2");
        assert!(
            rows[2]
                .problem
                .as_deref()
                .unwrap()
                .contains("1 fields, the header 2")
        );
        let err = read_rows("name\nx\n", COLUMNS, Path::new("f.csv")).unwrap_err();
        assert!(
            err.to_string()
                .contains("no column account_number (or 户号)"),
            "{err}"
        );
    }

    #[test]
    fn decodes_utf8_with_bom_and_gbk_and_names_the_bad_line() {
        let path = Path::new("f.csv");
        assert_eq!(
            decode(b"\xEF\xBB\xBFa\n", Encoding::Utf8, path).unwrap(),
            "a\n"
        );
        let (gbk, _, _) = encoding_rs::GBK.encode("户号\n王\n");
        assert_eq!(decode(&gbk, Encoding::Gbk, path).unwrap(), "户号\n王\n");
        let err = decode(&gbk, Encoding::Utf8, path).unwrap_err().to_string();
        assert!(
            err.contains("line 1 is not UTF-8") && err.contains("--encoding gbk"),
            "{err}"
        );
        let err = decode(b"ok\n\x81\n", Encoding::Gbk, path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2 is not GBK"), "{err}");
    }

    #[test]
    fn lists_split_on_ascii_and_full_width_separators() {
        assert_eq!(split_list(" 1; 2；3、 ;"), ["1", "2", "3"]);
    }
}
