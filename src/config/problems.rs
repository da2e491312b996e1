//! Configuration problems: each one placed on the file, line, column and key it is about,
//! and the collector that sections report into so that a check lists every problem at once.
//!
//! Owns the error types and their wording; must not know any section's meaning.

use super::source::ConfigSource;
use std::fmt;

/// A 1-based line and column (in characters) in a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One problem: `FILE:LINE:COL: KEY: what is wrong; what to do`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or other origin) the text came from.
    pub origin: String,
    /// Where in the file; `None` when the problem is not tied to a place (unreadable file).
    pub position: Option<Position>,
    /// Dotted key path with array indices as in the file (`grpc.tokens[1].role`); empty when
    /// the problem is about the file as a whole.
    pub key: String,
    /// What is wrong and what to do, separated by `; `.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.origin)?;
        if let Some(p) = self.position {
            write!(f, "{}:{}:", p.line, p.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " {}:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every problem found in one configuration, in file order; displays one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        // Stable: problems on one key keep the order they were found in.
        errors.sort_by_key(|e| e.position);
        ConfigErrors(errors)
    }

    /// A problem with the file as a whole, e.g. it cannot be read.
    pub fn about_file(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError {
            origin: origin.into(),
            position: None,
            key: String::new(),
            message: message.into(),
        }])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problem reported on exactly this key, if any.
    pub fn find(&self, key: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects the problems of one configuration. Sections validate themselves by calling
/// [`Problems::report`] with the key path the problem is about; the collector finds the line.
pub struct Problems<'s> {
    source: &'s ConfigSource,
    errors: Vec<ConfigError>,
    /// Findings that do not stop the configuration from running (`warning: …`).
    warnings: Vec<ConfigError>,
    /// Array elements the loader had to drop (`(array path, index in the file)`), so that
    /// indices of the typed values can be translated back to the file's.
    removed_elements: Vec<(String, usize)>,
}

impl<'s> Problems<'s> {
    pub fn new(source: &'s ConfigSource) -> Self {
        Problems {
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            removed_elements: Vec::new(),
        }
    }

    /// The file being checked, e.g. to ask whether a key was written at all.
    pub fn source(&self) -> &'s ConfigSource {
        self.source
    }

    /// Reports a problem about `key_path` (`grpc.tokens[1].agent_id`; indices are those of
    /// the typed `Vec`s). The message says what is wrong and what to do, joined by `; `. A key
    /// the file does not contain is placed on its nearest enclosing table.
    pub fn report(&mut self, key_path: &str, message: impl Into<String>) {
        let key = self.file_path(key_path);
        self.report_file_key(key, message.into());
    }

    /// Reports on a key path whose indices are already the file's.
    pub(crate) fn report_file_key(&mut self, key: String, message: String) {
        let error = self.placed(key, message);
        self.errors.push(error);
    }

    /// Notes something that cannot be checked or is unwise, without refusing the file; the
    /// message is shown as `warning: …`.
    pub fn warn(&mut self, key_path: &str, message: impl Into<String>) {
        let key = self.file_path(key_path);
        let warning = self.placed(key, format!("warning: {}", message.into()));
        self.warnings.push(warning);
    }

    fn placed(&self, key: String, message: String) -> ConfigError {
        let position = if key.is_empty() {
            None
        } else {
            self.source.nearest_position(&key)
        };
        ConfigError {
            origin: self.source.origin().to_owned(),
            position,
            key,
            message,
        }
    }

    /// The warnings so far, in file order; they stay out of [`Problems::finish`]'s errors.
    pub fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|w| w.position);
        warnings
    }

    /// Names another key in a message: `grpc.tokens[1] (line 18)`, with the file's indices;
    /// a key the file does not write is named with `(default)`.
    pub fn locate(&self, key_path: &str) -> String {
        let key = self.file_path(key_path);
        let written = self
            .source
            .position(&key)
            .or_else(|| self.source.position(&bracket_indices(&key)));
        match written {
            Some(p) => format!("{key} (line {})", p.line),
            None => format!("{key} (default)"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was reported, otherwise every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors::new(self.errors))
        }
    }

    /// Every problem reported so far.
    pub fn into_errors(self) -> ConfigErrors {
        ConfigErrors::new(self.errors)
    }

    pub(crate) fn note_removed_element(&mut self, array: &str, index: usize) {
        self.removed_elements.push((array.to_owned(), index));
    }

    /// Translates typed indices to file indices, skipping elements the loader dropped.
    fn file_path(&self, typed: &str) -> String {
        if self.removed_elements.is_empty() {
            return typed.to_owned();
        }
        let mut out = String::with_capacity(typed.len());
        let mut rest = typed;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            match after[..close].parse::<usize>() {
                Ok(mut index) => {
                    let mut dropped: Vec<usize> = self
                        .removed_elements
                        .iter()
                        .filter(|(array, _)| *array == out)
                        .map(|(_, i)| *i)
                        .collect();
                    dropped.sort_unstable();
                    for d in dropped {
                        if d <= index {
                            index += 1;
                        }
                    }
                    out.push_str(&format!("[{index}]"));
                }
                Err(_) => out.push_str(&rest[open..open + close + 2]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `a.list.3.b` → `a.list[3].b`: the sections' validators write indices as path segments.
fn bracket_indices(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    for (i, segment) in key.split('.').enumerate() {
        if i > 0 && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_indices_map_back_to_file_indices() {
        let source = ConfigSource::parse("a = [1, 2, 3, 4]\n", "f.toml").unwrap();
        let mut problems = Problems::new(&source);
        problems.note_removed_element("a", 0);
        problems.note_removed_element("a", 2);
        // Typed element 0 is file element 1, typed 1 is file 3.
        assert_eq!(problems.file_path("a[0]"), "a[1]");
        assert_eq!(problems.file_path("a[1]"), "a[3]");
        assert_eq!(problems.file_path("b[0].c"), "b[0].c");
    }

    #[test]
    fn display_is_file_line_col_key_message() {
        let source = ConfigSource::parse("[x]\ny = 1\n", "f.toml").unwrap();
        let mut problems = Problems::new(&source);
        problems.report("x.y", "too small; use 2 or more");
        problems.report("x.z", "missing; add it");
        let errors = problems.into_errors();
        assert_eq!(
            errors.to_string(),
            "f.toml:1:2: x.z: missing; add it\nf.toml:2:1: x.y: too small; use 2 or more"
        );
    }
}
