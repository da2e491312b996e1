//! The ticket vocabulary shared by the rules, the store and the API: categories, channels,
//! statuses and complaint levels, with the stable text codes stored in PostgreSQL.

use std::fmt;
use std::str::FromStr;

/// Declares a closed set of values with a stable snake_case code (what the database stores
/// and the config names) and a Chinese label (what agents read).
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal, $label:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code stored in the database and written in configuration.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The Chinese name agents and regulations use.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                code.parse().map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err(UnknownCode { kind: stringify!($name), code: s.to_owned() }),
                }
            }
        }
    };
}

/// A code that names no known value; says which kind of value was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} code {code:?}")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub code: String,
}

coded_enum! {
    /// Demand categories (hotline-rules §2). Declared from the lowest to the highest
    /// precedence, so that `Ord` picks "the highest category" when one ticket holds demands of
    /// several types (§4).
    /// The order follows how fast 000 §14 makes each one move: a leak goes out at once,
    /// complaints and repairs within 5 minutes, urges within 10, the rest within 20; among
    /// equals the stricter handling ranks higher.
    Category {
        Query => "query", "信息查询";
        Praise => "praise", "表扬";
        Consultation => "consultation", "业务咨询";
        Suggestion => "suggestion", "建议";
        Opinion => "opinion", "意见";
        ServiceApplication => "service_application", "服务申请";
        TipOff => "tip_off", "举报";
        Urge => "urge", "催办";
        Repair => "repair", "故障报修";
        Complaint => "complaint", "投诉";
        Leak => "leak", "报警";
    }
}

coded_enum! {
    /// Where a demand came from (hotline-rules §1): every channel ends up as a ticket.
    Channel {
        Hotline => "hotline", "热线电话";
        Wechat => "wechat", "微信";
        ServiceWindow => "service_window", "服务窗口";
        ComplaintLine => "complaint_line", "投诉专线";
        Government12345 => "gov_12345", "12345政务热线";
        MessageBoard => "message_board", "网上留言";
        GroupReferral => "group_referral", "集团转办";
        LetterVisit => "letter_visit", "信访";
        Media => "media", "媒体";
        OnlineGov => "online_gov", "一网通办";
    }
}

coded_enum! {
    /// Ticket life-cycle states (hotline-rules §4). `Reopened` is a ticket back at its unit for
    /// another handling (centre return, or a first 'unsatisfied' callback); `Adjudication` is
    /// the supervisor's queue (second centre return, second 'unsatisfied').
    Status {
        Draft => "draft", "草稿";
        Dispatched => "dispatched", "已派单";
        Accepted => "accepted", "已受理";
        Returned => "returned", "已退单";
        ExtensionRequested => "extension_requested", "申请延期";
        Replied => "replied", "已回复";
        Callback => "callback", "回访中";
        Reopened => "reopened", "重办";
        Adjudication => "adjudication", "研判";
        Closed => "closed", "已办结";
    }
}

coded_enum! {
    /// Complaint levels (hotline-rules §3): L3 light, L2 general, L1 major.
    ComplaintLevel {
        L3 => "l3", "轻度投诉";
        L2 => "l2", "一般投诉";
        L1 => "l1", "重大投诉";
    }
}

impl Status {
    /// A ticket in this state still waits on someone.
    pub fn is_open(self) -> bool {
        self != Status::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        fn check<T: Copy + Eq + fmt::Debug + FromStr<Err = UnknownCode> + fmt::Display>(all: &[T]) {
            let mut seen = std::collections::HashSet::new();
            for v in all {
                let code = v.to_string();
                assert!(seen.insert(code.clone()), "duplicate code {code}");
                assert_eq!(code.parse::<T>().ok(), Some(*v));
            }
        }
        check(Category::ALL);
        check(Channel::ALL);
        check(Status::ALL);
        check(ComplaintLevel::ALL);
        assert_eq!(
            "nope".parse::<Category>(),
            Err(UnknownCode {
                kind: "Category",
                code: "nope".into()
            })
        );
    }

    #[test]
    fn serde_uses_the_codes() {
        assert_eq!(
            serde_json::to_string(&Status::Adjudication).unwrap(),
            "\"adjudication\""
        );
        assert_eq!(
            serde_json::from_str::<Category>("\"tip_off\"").unwrap(),
            Category::TipOff
        );
        let err = serde_json::from_str::<ComplaintLevel>("\"l4\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown ComplaintLevel code \"l4\"")
        );
    }

    #[test]
    fn leak_is_the_highest_category() {
        assert_eq!(Category::ALL.iter().max(), Some(&Category::Leak));
        assert!(Category::Complaint > Category::Consultation);
    }
}
