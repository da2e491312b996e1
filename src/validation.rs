//! Validation results shared by the protocol cores' configuration checks (`ivr`, `acd`): a
//! problem is a dotted key path and what is wrong and how to fix it. The config loader turns
//! them into file:line messages.
//!
//! A leaf: imports nothing of the crate, so every layer may use it.

use std::fmt;

/// One configuration problem: the dotted key path (`ivr.flows.main.nodes.menu1.options.3`)
/// and what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
    /// A warning: the configuration still runs, but something cannot be checked.
    pub warning: bool,
}

impl ValidationError {
    /// Whether the problem is a warning rather than an error.
    pub fn is_warning(&self) -> bool {
        self.warning
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects problems under a path prefix.
pub(crate) struct Problems(pub Vec<ValidationError>);

impl Problems {
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
            warning: false,
        });
    }

    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
            warning: true,
        });
    }
}
