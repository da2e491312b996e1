//! The text of one configuration file with the position of every key in it, and typed
//! deserialization that reports every problem (not just the first) on the line of its key.
//!
//! Owns TOML syntax, key positions and serde errors; must not know any section's meaning.

use super::problems::{Position, Problems};
use super::{ConfigError, ConfigErrors};
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

/// Upper bound on repair-and-retry rounds: one per reported problem. A file with more
/// problems than this gets the first ones, which is plenty to start fixing.
const MAX_PROBLEMS: usize = 200;

/// A configuration file's text, its name for messages, and where each key is.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    origin: String,
    text: String,
    entries: Vec<Entry>,
}

/// One key of a table or one element of an array, e.g. `grpc.tokens[1].role`.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    /// The key itself; for array elements the element.
    key: Range<usize>,
    value: Range<usize>,
    depth: usize,
}

impl ConfigSource {
    /// Parses `text` as TOML. `origin` names the file in every message. Syntax errors are all
    /// reported at once.
    pub fn parse(text: impl Into<String>, origin: impl Into<String>) -> Result<Self, ConfigErrors> {
        let mut source = ConfigSource {
            origin: origin.into(),
            text: text.into(),
            entries: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(&source.text);
        if !errors.is_empty() {
            let errors = errors
                .iter()
                .map(|e| ConfigError {
                    origin: source.origin.clone(),
                    position: e.span().map(|s| source.position_of_offset(s.start)),
                    key: String::new(),
                    message: format!(
                        "TOML syntax error: {}; fix the syntax here (strings need quotes, \
                         a key may appear only once per table)",
                        e.message().trim_end()
                    ),
                })
                .collect();
            return Err(ConfigErrors::new(errors));
        }
        let mut entries = Vec::new();
        index_table(&mut entries, "", 0, root.get_ref());
        source.entries = entries;
        Ok(source)
    }

    /// The file name given at parse time.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the file sets this key (dotted path with array indices: `grpc.tokens[0].name`).
    pub fn contains(&self, key_path: &str) -> bool {
        self.entry(key_path).is_some()
    }

    /// Line and column (1-based) where the key is written, if the file has it.
    pub fn position(&self, key_path: &str) -> Option<Position> {
        self.entry(key_path)
            .map(|e| self.position_of_offset(e.key.start))
    }

    /// Line and column of the key, or of its nearest ancestor that the file has: a missing
    /// key is reported where its table starts.
    pub fn nearest_position(&self, key_path: &str) -> Option<Position> {
        let mut path = key_path;
        loop {
            if let Some(p) = self.position(path) {
                return Some(p);
            }
            path = parent_path(path)?;
        }
    }

    /// The line of a key, for callers that only want the number.
    pub fn line_of(&self, key_path: &str) -> Option<usize> {
        self.position(key_path).map(|p| p.line)
    }

    /// Deserializes the whole document into `T`, reporting every serde problem (unknown key,
    /// wrong type, bad value, missing key) into `problems` on its key.
    ///
    /// serde stops at the first error, so this repairs and retries: the offending key (or the
    /// table missing a required key) is removed from a working copy of the document and
    /// deserialization runs again, until it succeeds. Defaults stand in for what was removed,
    /// so cross-field validation can still run; removed array elements are remembered in
    /// `problems` so that later reports keep the file's indices. Returns `None` only when the
    /// document cannot be typed at all.
    pub fn deserialize<T: DeserializeOwned>(&self, problems: &mut Problems<'_>) -> Option<T> {
        let root = match DeTable::parse(&self.text) {
            Ok(root) => root,
            Err(e) => {
                // `parse` already succeeded on this text; reported rather than assumed.
                problems.report_file_key(
                    String::new(),
                    format!("TOML syntax error: {}", e.message().trim_end()),
                );
                return None;
            }
        };
        let span = root.span();
        let mut work = Spanned::new(span, DeValue::Table(root.into_inner()));
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..MAX_PROBLEMS {
            let error = match T::deserialize(ValueDeserializer::from(work.clone())) {
                Ok(value) => return Some(value),
                Err(error) => error,
            };
            let Some(span) = error.span() else {
                problems.report_file_key(String::new(), plain_message(error.message()));
                return None;
            };
            let Some(entry) = self.entry_at(span.start) else {
                // The document root itself is wrong (e.g. a missing top-level key).
                let described = describe(error.message(), "");
                problems.report_file_key(described.key, described.message);
                return None;
            };
            let described = describe(error.message(), &entry.path);
            // A required key that we removed earlier, or that the file misspelt, now shows up
            // as missing: already reported.
            if !removed.contains(&described.key) {
                removed.push(described.key.clone());
                problems.report_file_key(described.key, described.message);
            }
            removed.extend(described.meant);
            if !remove_at(&mut work, span.start) {
                return None;
            }
            removed.push(entry.path.clone());
            if let Some((array, index)) = split_array_index(&entry.path) {
                problems.note_removed_element(array, index);
            }
        }
        None
    }

    fn entry(&self, key_path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == key_path)
    }

    /// The deepest key or element whose key or value covers `offset`.
    fn entry_at(&self, offset: usize) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.key.contains(&offset) || e.value.contains(&offset))
            .max_by_key(|e| e.depth)
    }

    fn position_of_offset(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Writes one path segment, quoting keys that are not bare TOML keys.
fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let segment = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        segment
    } else {
        format!("{prefix}.{segment}")
    }
}

fn index_table(entries: &mut Vec<Entry>, prefix: &str, depth: usize, table: &DeTable<'_>) {
    for (key, value) in table.iter() {
        let path = join_key(prefix, key.get_ref());
        entries.push(Entry {
            path: path.clone(),
            key: key.span(),
            value: value.span(),
            depth: depth + 1,
        });
        index_value(entries, &path, depth + 1, value);
    }
}

fn index_value(entries: &mut Vec<Entry>, path: &str, depth: usize, value: &Spanned<DeValue<'_>>) {
    match value.get_ref() {
        DeValue::Table(table) => index_table(entries, path, depth, table),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                let element_path = format!("{path}[{i}]");
                entries.push(Entry {
                    path: element_path.clone(),
                    key: element.span(),
                    value: element.span(),
                    depth: depth + 1,
                });
                index_value(entries, &element_path, depth + 1, element);
            }
        }
        _ => {}
    }
}

/// Removes from the working document the deepest key or element covering `offset`.
/// Spans are those of the original text, so they still find the same node after earlier
/// removals. Searches the whole tree: a `[table]`'s span covers only its header, not the keys
/// under it.
fn remove_at(value: &mut Spanned<DeValue<'_>>, offset: usize) -> bool {
    match value.get_mut() {
        DeValue::Table(table) => {
            if table.iter_mut().any(|(_, child)| remove_at(child, offset)) {
                return true;
            }
            let covering = table
                .iter()
                .find(|(k, v)| k.span().contains(&offset) || v.span().contains(&offset))
                .map(|(k, _)| k.clone());
            covering.is_some_and(|key| table.remove(&key).is_some())
        }
        DeValue::Array(array) => {
            if array
                .as_mut()
                .iter_mut()
                .any(|child| remove_at(child, offset))
            {
                return true;
            }
            let Some(index) = array.iter().position(|v| v.span().contains(&offset)) else {
                return false;
            };
            let mut kept = DeArray::new();
            for (i, element) in array.iter().enumerate() {
                if i != index {
                    kept.push(element.clone());
                }
            }
            *array = kept;
            true
        }
        _ => false,
    }
}

/// `grpc.tokens[1].role` → `grpc.tokens[1]`; `grpc.tokens[1]` → `grpc.tokens`; `grpc` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    // The last '.' outside quotes separates the last key.
    let mut in_quotes = false;
    let mut last_dot = None;
    let mut escaped = false;
    for (i, c) in path.char_indices() {
        match c {
            '\\' if in_quotes && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => in_quotes = !in_quotes,
            '.' if !in_quotes => last_dot = Some(i),
            _ => {}
        }
        escaped = false;
    }
    last_dot.map(|i| &path[..i])
}

/// `grpc.tokens[3]` → (`grpc.tokens`, 3).
fn split_array_index(path: &str) -> Option<(&str, usize)> {
    let open = path.strip_suffix(']')?.rfind('[')?;
    let index = path[open + 1..path.len() - 1].parse().ok()?;
    Some((&path[..open], index))
}

/// A serde problem restated for people.
struct Described {
    /// The key the problem is about.
    key: String,
    /// What is wrong and what to do.
    message: String,
    /// For a misspelt key, the key it probably meant.
    meant: Option<String>,
}

/// Turns a serde message about the node at `path` into the key it concerns and a message
/// that says what is wrong and what to do.
fn describe(message: &str, path: &str) -> Described {
    let quoted = backquoted(message);
    let on = |key: String, message: String| Described {
        key,
        message,
        meant: None,
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return on(
            join_key(path, field),
            "missing; this key is required here, add it".to_owned(),
        );
    }
    if message.starts_with("unknown field `") {
        let Some((unknown, names)) = quoted.split_first().filter(|(_, n)| !n.is_empty()) else {
            return on(
                path.to_owned(),
                "unknown key; this table takes no keys, remove it".to_owned(),
            );
        };
        let expected = names.join(", ");
        return match closest(unknown, names) {
            Some(name) => Described {
                key: path.to_owned(),
                message: format!("unknown key; did you mean {name}? expected one of {expected}"),
                meant: parent_path(path).map(|table| join_key(table, name)),
            },
            None => on(
                path.to_owned(),
                format!("unknown key; expected one of {expected} (check the spelling)"),
            ),
        };
    }
    if message.starts_with("unknown variant `") {
        let found = quoted.first().map(String::as_str).unwrap_or_default();
        let names = quoted.get(1..).unwrap_or_default().join(", ");
        return on(
            path.to_owned(),
            format!("unknown value {found:?}; expected one of {names}"),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        return on(
            path.to_owned(),
            format!(
                "wrong type: found {}, expected {}; write a value of that type",
                toml_type_name(&found.replace('`', "")),
                toml_type_name(expected)
            ),
        );
    }
    on(path.to_owned(), plain_message(message))
}

/// The expected key `unknown` most likely misspells: at most two edits away.
fn closest<'a>(unknown: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|name| (edit_distance(unknown, name), name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// serde names Rust shapes; administrators write TOML.
fn toml_type_name(serde_name: &str) -> String {
    if serde_name.starts_with("struct ") || matches!(serde_name, "map" | "a map") {
        "a table".to_owned()
    } else if matches!(serde_name, "sequence" | "a sequence") {
        "an array".to_owned()
    } else {
        serde_name.to_owned()
    }
}

fn plain_message(message: &str) -> String {
    message.trim_end().replace('`', "")
}

/// The `backquoted` words of a serde message, in order.
fn backquoted(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
[daemon]
state_dir = \"var\"

[grpc]
listen = \"127.0.0.1:50051\"

[[grpc.tokens]]
name = \"admin\"

[[grpc.tokens]]
name = \"agent:1001\"
\"odd key\" = 1
";

    #[test]
    fn positions_resolve_keys_array_elements_and_quoted_keys() {
        let source = ConfigSource::parse(TEXT, "t.toml").unwrap();
        assert_eq!(source.line_of("daemon.state_dir"), Some(2));
        assert_eq!(source.line_of("grpc.listen"), Some(5));
        assert_eq!(source.line_of("grpc.tokens[1].name"), Some(11));
        assert_eq!(source.line_of("grpc.tokens[1].\"odd key\""), Some(12));
        assert_eq!(
            source.position("grpc.listen"),
            Some(Position { line: 5, column: 1 })
        );
        assert!(!source.contains("grpc.tokens[1].role"));
        // A missing key is placed on its table.
        let element = source.nearest_position("grpc.tokens[1].role").unwrap();
        assert!(element.line == 10 || element.line == 11, "{element:?}");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let errors = ConfigSource::parse("[a]\nb = \n", "bad.toml").unwrap_err();
        let text = errors.to_string();
        assert!(text.starts_with("bad.toml:2:"), "{text}");
        assert!(text.contains("TOML syntax error"), "{text}");
    }

    #[test]
    fn path_helpers() {
        assert_eq!(parent_path("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a.\"x.y\""), Some("a"));
        assert_eq!(parent_path("a"), None);
        assert_eq!(split_array_index("a.b[12]"), Some(("a.b", 12)));
        assert_eq!(split_array_index("a.b"), None);
    }

    #[test]
    fn misspellings_are_recognised() {
        let names: Vec<String> = ["name", "role", "token", "token_env"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("rol", &names), Some("role"));
        assert_eq!(closest("tokn_env", &names), Some("token_env"));
        assert_eq!(closest("colour", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
