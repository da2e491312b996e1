//! The endpoint's running totals, for metrics: requests received by method, responses sent by
//! method and class, and refusals by reason. Every label comes from a fixed set (methods we
//! know, else `other`), so a peer sending made-up methods cannot grow the set.
//!
//! Sans-IO: the endpoint counts what it parses and what it hands out to send; must not
//! decide anything.

/// The methods counted by name; anything else is counted as the last, `other`.
pub const METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "UPDATE",
    "INFO",
    "PRACK",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "other",
];

/// Response classes by first digit.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// Why a request or a TCP connection was refused.
pub const REFUSAL_REASONS: [&str; 3] = ["acl", "rate_limit", "tcp_limit"];

/// Totals since the endpoint started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipStats {
    /// Requests received (retransmissions included), by [`METHODS`] index.
    pub requests: [u64; METHODS.len()],
    /// Responses sent (retransmissions included), by method (from CSeq) and class.
    pub responses: [[u64; CLASSES.len()]; METHODS.len()],
    /// Requests and connections refused, by [`REFUSAL_REASONS`] index.
    pub refused: [u64; REFUSAL_REASONS.len()],
}

/// The [`METHODS`] index of `method` (case-sensitive, as RFC 3261 says).
pub fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

impl SipStats {
    pub fn note_request(&mut self, method: &str) {
        self.requests[method_index(method)] += 1;
    }

    /// Counts `data` if it is a response (a message we send: our own formatting).
    pub fn note_transmit(&mut self, data: &[u8]) {
        let Some(rest) = data.strip_prefix(b"SIP/2.0 ") else {
            return;
        };
        let class = match rest.first() {
            Some(digit @ b'1'..=b'6') => usize::from(digit - b'1'),
            _ => return,
        };
        let method = cseq_method(data).map_or(METHODS.len() - 1, method_index);
        self.responses[method][class] += 1;
    }

    /// Counts a refusal given with the endpoint's or transport's reason text.
    pub fn note_refusal(&mut self, reason: &str) {
        let index = if reason.contains("rate_limit") {
            1
        } else if reason.contains("tcp_max_connections") {
            2
        } else {
            0
        };
        self.refused[index] += 1;
    }
}

/// The method of the CSeq header of a message (`CSeq: 1 INVITE`), if it has one.
fn cseq_method(data: &[u8]) -> Option<&str> {
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let value = head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("cseq").then_some(value)
    })?;
    value.split_whitespace().nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_by_method_and_unknown_methods_as_other() {
        let mut stats = SipStats::default();
        stats.note_request("INVITE");
        stats.note_request("INVITE");
        stats.note_request("FOO");
        stats.note_request("invite");
        assert_eq!(stats.requests[method_index("INVITE")], 2);
        assert_eq!(stats.requests[METHODS.len() - 1], 2);
    }

    #[test]
    fn responses_count_by_cseq_method_and_class_and_requests_not_at_all() {
        let mut stats = SipStats::default();
        stats.note_transmit(b"SIP/2.0 180 Ringing\r\nVia: x\r\nCSeq: 1 INVITE\r\n\r\n");
        stats.note_transmit(b"SIP/2.0 200 OK\r\ncseq:  7  BYE\r\n\r\nCSeq: 1 INVITE");
        stats.note_transmit(b"SIP/2.0 486 Busy\r\n\r\n");
        stats.note_transmit(b"BYE sip:a@b SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n");
        stats.note_transmit(b"SIP/2.0 999 Odd\r\nCSeq: 1 INVITE\r\n\r\n");
        let invite = method_index("INVITE");
        assert_eq!(stats.responses[invite][0], 1);
        assert_eq!(stats.responses[method_index("BYE")][1], 1);
        assert_eq!(stats.responses[METHODS.len() - 1][3], 1);
        let total: u64 = stats.responses.iter().flatten().sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn refusals_count_by_reason() {
        let mut stats = SipStats::default();
        stats.note_refusal("not in sip.allowed_sources, answered 403");
        stats.note_refusal("over sip.rate_limit_per_second, dropped");
        stats.note_refusal("sip.tcp_max_connections_per_source reached");
        stats.note_refusal("sip.tcp_max_connections reached");
        assert_eq!(stats.refused, [1, 1, 2]);
    }
}
