//! Special groups (002 §10.7: elderly people living alone, disabled people): callers whose
//! household file carries one of the configured flags wait ahead of other callers of the same
//! priority. Leak calls stay first whatever the flag.
//!
//! Owns the `[ivr.special_groups]` settings, their check and the priority they give; must not
//! look households up (the call layer passes the flag in `CallInfo`).

use super::config::Problems;
use super::events::LEAK_PRIORITY;
use serde::Deserialize;

/// The household flags a customer file may carry (the store's closed list).
pub const GROUP_CODES: [&str; 3] = ["elderly_alone", "disabled", "other"];

/// `[ivr.special_groups]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecialGroupsConfig {
    /// The flags that raise a caller's queue priority.
    pub groups: Vec<String>,
    /// Added to the queue node's priority (never reaching the leak priority); 0 turns the
    /// rule off.
    pub priority_boost: u8,
}

impl Default for SpecialGroupsConfig {
    fn default() -> Self {
        SpecialGroupsConfig {
            groups: vec!["elderly_alone".into(), "disabled".into()],
            priority_boost: 3,
        }
    }
}

impl SpecialGroupsConfig {
    /// The boost a caller with household flag `group` gets (0 when none applies).
    pub fn boost_for(&self, group: Option<&str>) -> u8 {
        match group {
            Some(code) if self.groups.iter().any(|g| g == code) => self.priority_boost,
            _ => 0,
        }
    }
}

/// A non-leak queue priority raised by `boost`, kept below the leak priority.
pub fn boosted(priority: u8, boost: u8) -> u8 {
    priority.saturating_add(boost).min(LEAK_PRIORITY - 1)
}

pub(crate) fn validate_special_groups(config: &SpecialGroupsConfig, p: &mut Problems) {
    for (i, code) in config.groups.iter().enumerate() {
        if !GROUP_CODES.contains(&code.as_str()) {
            p.add(
                format!("ivr.special_groups.groups.{i}"),
                format!(
                    "{code:?} is not a household flag: use one of {}",
                    GROUP_CODES.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_flags_raise_and_never_to_the_leak_priority() {
        let config = SpecialGroupsConfig::default();
        assert_eq!(config.boost_for(Some("elderly_alone")), 3);
        assert_eq!(config.boost_for(Some("disabled")), 3);
        assert_eq!(config.boost_for(Some("other")), 0);
        assert_eq!(config.boost_for(None), 0);
        assert_eq!(boosted(5, 3), 8);
        assert_eq!(boosted(253, 3), LEAK_PRIORITY - 1);
    }

    #[test]
    fn unknown_flags_are_refused_by_name() {
        let config = SpecialGroupsConfig {
            groups: vec!["disabled".into(), "vip".into()],
            priority_boost: 2,
        };
        let mut p = Problems(Vec::new());
        validate_special_groups(&config, &mut p);
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "ivr.special_groups.groups.1");
        assert!(p.0[0].message.contains("\"vip\" is not a household flag"));
    }
}
