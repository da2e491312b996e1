//! SIP messages: the model the whole stack reads ([`Message`]), parsing with its checks
//! (`parse.rs`), and the readers for typed header values (`headers.rs`).
//!
//! The model: the start line, the header lines in order with canonical names (so responses
//! can copy them as they came), the body trimmed to its Content-Length — and, parsed once
//! when the message is parsed or a header is set, the typed headers the transaction and
//! dialog layers read: the top Via, From and To (URI and tag), Call-ID, CSeq,
//! Max-Forwards and the Contact URI. rsip reads the start line (method, Request-URI,
//! version, status); the header section is split in the same single pass that expands
//! compact forms and unfolds lines. So no layer re-parses a header string: `top_via()`,
//! `cseq()`, `from_tag()` and friends return what was parsed.
//!
//! Owns bytes <-> [`Message`]; must not hold state, timers or sockets.

mod headers;
mod parse;

pub use headers::{Via, host_port_of, split_host_port, split_list, tag_of, uri_of, user_of};
pub use parse::{
    Framing, MAX_HEAD_BYTES, MAX_HEADERS, MAX_MESSAGE_BYTES, ParseError, StreamFrame, frame_stream,
    is_keepalive, parse,
};

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// A parsed (or locally built) SIP message: start line, headers in order with canonical
/// names, the body trimmed to its Content-Length, and the typed view of the headers the
/// stack reads (kept in step with the header lines by every method that changes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    typed: Typed,
}

/// A From or To value: its URI and tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Party {
    uri: String,
    tag: Option<String>,
}

impl Party {
    fn parse(value: &str) -> Party {
        Party {
            uri: uri_of(value).to_string(),
            tag: tag_of(value).map(str::to_string),
        }
    }
}

/// The typed headers, each from the first header of its name (the top Via: the first entry
/// of the Via lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Typed {
    via: Option<Via>,
    from: Option<Party>,
    to: Option<Party>,
    call_id: String,
    cseq: Option<(u32, String)>,
    max_forwards: Option<u8>,
    contact: Option<String>,
    /// Every Record-Route entry, in order.
    record_route: Vec<String>,
}

/// The headers [`Typed`] holds; a change to one of these re-reads it.
const TYPED_HEADERS: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Contact",
    "Record-Route",
];

fn parse_cseq(value: &str) -> Option<(u32, String)> {
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    parts.next().is_none().then(|| (number, method.to_string()))
}

impl Message {
    fn new(start: StartLine) -> Message {
        Message {
            start,
            headers: Vec::new(),
            body: Vec::new(),
            typed: Typed::default(),
        }
    }

    /// A message from parsed parts; its typed headers are read here, once.
    fn from_parts(start: StartLine, headers: Vec<(String, String)>, body: Vec<u8>) -> Message {
        let mut message = Message {
            start,
            headers,
            body,
            typed: Typed::default(),
        };
        for name in TYPED_HEADERS {
            message.retype(name);
        }
        message
    }

    /// Re-reads the typed header `name` from the header lines (after a change to them).
    fn retype(&mut self, name: &str) {
        let first = self.header(name);
        match name {
            "Via" => {
                let top = self
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("Via"))
                    .find_map(|(_, v)| split_list(v).first().copied());
                self.typed.via = top.and_then(Via::parse);
            }
            "From" => self.typed.from = first.map(Party::parse),
            "To" => self.typed.to = first.map(Party::parse),
            "Call-ID" => self.typed.call_id = first.unwrap_or("").to_string(),
            "CSeq" => self.typed.cseq = first.and_then(parse_cseq),
            "Max-Forwards" => self.typed.max_forwards = first.and_then(|v| v.trim().parse().ok()),
            "Contact" => self.typed.contact = first.map(|c| uri_of(c).to_string()),
            "Record-Route" => {
                self.typed.record_route = self
                    .header_values("Record-Route")
                    .into_iter()
                    .map(str::to_string)
                    .collect();
            }
            _ => {}
        }
    }

    /// Re-reads the typed header with this name, if it is one.
    fn retype_if_typed(&mut self, name: &str) {
        if let Some(typed) = TYPED_HEADERS.iter().find(|t| t.eq_ignore_ascii_case(name)) {
            self.retype(typed);
        }
    }

    pub fn request(method: &str, uri: &str) -> Message {
        Message::new(StartLine::Request {
            method: method.to_string(),
            uri: uri.to_string(),
        })
    }

    /// A response to `request` with its Via, From, To, Call-ID and CSeq copied; `to_tag`
    /// is added to To when it has none yet.
    pub fn response_to(
        request: &Message,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Message {
        let mut response = Message::new(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
        let add_tag = to_tag.filter(|_| request.to_tag().is_none());
        for (name, value) in &request.headers {
            let copy = matches!(name.as_str(), "Via" | "From" | "Call-ID" | "CSeq");
            if copy {
                response.headers.push((name.clone(), value.clone()));
            } else if name == "To" {
                let mut to = value.clone();
                if let Some(tag) = add_tag {
                    let _ = write!(to, ";tag={tag}");
                }
                response.headers.push((name.clone(), to));
            }
        }
        // The copied headers say what the request's said: copy their typed view too.
        let typed = &request.typed;
        response.typed = Typed {
            via: typed.via.clone(),
            from: typed.from.clone(),
            to: typed.to.clone().map(|mut to| {
                to.tag = to.tag.or(add_tag.map(str::to_string));
                to
            }),
            call_id: typed.call_id.clone(),
            cseq: typed.cseq.clone(),
            max_forwards: None,
            contact: None,
            record_route: Vec::new(),
        };
        response
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header, comma-separated lists split into entries.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_string(), value.into()));
        self.retype_if_typed(name);
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.retype_if_typed(name);
    }

    /// The header lines, in order (names canonical for the headers we know).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The top Via entry, parsed.
    pub fn top_via(&self) -> Option<&Via> {
        self.typed.via.as_ref()
    }

    pub fn call_id(&self) -> &str {
        &self.typed.call_id
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.typed.from.as_ref()?.tag.as_deref()
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.typed.to.as_ref()?.tag.as_deref()
    }

    /// The URI of From (`"x" <sip:a@b>;tag=1` → `sip:a@b`).
    pub fn from_uri(&self) -> Option<&str> {
        self.typed.from.as_ref().map(|f| f.uri.as_str())
    }

    /// The URI of the first Contact.
    pub fn contact_uri(&self) -> Option<&str> {
        self.typed.contact.as_deref()
    }

    /// The Record-Route entries, in the order received.
    pub fn record_route(&self) -> &[String] {
        &self.typed.record_route
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (number, method) = self.typed.cseq.as_ref()?;
        Some((*number, method))
    }

    pub fn max_forwards(&self) -> Option<u8> {
        self.typed.max_forwards
    }

    /// Records on the top Via where a request really came from (RFC 3261 §18.2.1, RFC 3581),
    /// so that our responses find their way back: `received` when the sent-by host is not
    /// the source IP, and the source port in a bare `rport`.
    pub fn stamp_top_via(&mut self, source: SocketAddr) {
        let Some(index) = self.headers.iter().position(|(n, _)| n == "Via") else {
            return;
        };
        let Some(via) = self.typed.via.as_mut() else {
            return;
        };
        let entries = split_list(&self.headers[index].1);
        let Some(first) = entries.first() else { return };
        let port = source.port().to_string();
        let mut top: Vec<String> = first
            .split(';')
            .map(|part| {
                if part.trim().eq_ignore_ascii_case("rport") {
                    format!("rport={port}")
                } else {
                    part.to_string()
                }
            })
            .collect();
        for (name, value) in &mut via.params {
            if name == "rport" && value.is_none() {
                *value = Some(port.clone());
            }
        }
        let ip = source.ip().to_string();
        if via.host != ip && via.param("received").is_none() {
            top.push(format!("received={ip}"));
            via.params.push(("received".into(), Some(ip)));
        }
        let mut value = top.join(";");
        for rest in &entries[1..] {
            value.push_str(", ");
            value.push_str(rest);
        }
        self.headers[index].1 = value;
    }

    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.remove_header("Content-Type");
        self.push_header("Content-Type", content_type);
        self.body = body;
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Wire form; Content-Length is always written from the actual body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("Content-Length") {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const OPTIONS: &str = "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        From: <sip:pbx@127.0.0.1>;tag=a\r\n\
        To: <sip:hotline@127.0.0.1>\r\n\
        Call-ID: c1\r\n\
        CSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_request_and_round_trips() {
        let m = parse(OPTIONS.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(m.method(), Some("OPTIONS"));
        assert_eq!(m.cseq(), Some((1, "OPTIONS")));
        assert_eq!(m.from_tag(), Some("a"));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
        let again = parse(&m.to_bytes(), Framing::Datagram).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn compact_headers_are_expanded() {
        let compact = "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\
            v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n\
            f: <sip:pbx@127.0.0.1>;tag=b\r\n\
            t: <sip:hotline@127.0.0.1>\r\n\
            i: c2\r\n\
            CSeq: 1 OPTIONS\r\n\
            Max-Forwards: 70\r\n\
            l: 0\r\n\r\n";
        let m = parse(compact.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(m.call_id(), "c2");
        assert_eq!(m.from_tag(), Some("b"));
    }

    #[test]
    fn stream_framing_by_content_length() {
        let msg = "\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabcXYZ";
        assert_eq!(
            frame_stream(msg.as_bytes(), 1000),
            StreamFrame::Complete(msg.len() - 3)
        );
        assert_eq!(
            frame_stream(&msg.as_bytes()[..20], 1000),
            StreamFrame::Incomplete
        );
        assert!(matches!(
            frame_stream(b"X sip:a SIP/2.0\r\nContent-Length: 99999\r\n\r\n", 1000),
            StreamFrame::Invalid(_)
        ));
        // Content-Lengths that wrap the frame arithmetic around (usize::MAX and just below,
        // after leading CRLFs too) are too big, never a short frame or a panic.
        for length in [u64::MAX, u64::MAX - 3, u64::MAX - 40] {
            let msg = format!("\r\n\r\nX sip:a SIP/2.0\r\nContent-Length: {length}\r\n\r\nbody");
            assert!(
                matches!(
                    frame_stream(msg.as_bytes(), MAX_MESSAGE_BYTES),
                    StreamFrame::Invalid(_)
                ),
                "{length}"
            );
        }
    }

    #[test]
    fn top_via_gets_received_and_rport() {
        let mut m = Message::request("OPTIONS", "sip:a@b");
        m.push_header(
            "Via",
            "SIP/2.0/UDP pbx.local:5070;branch=z9hG4bKa;rport, SIP/2.0/UDP 10.0.0.1",
        );
        m.stamp_top_via("127.0.0.7:40000".parse().unwrap());
        assert_eq!(
            m.header("Via"),
            Some(
                "SIP/2.0/UDP pbx.local:5070;branch=z9hG4bKa;rport=40000;received=127.0.0.7, SIP/2.0/UDP 10.0.0.1"
            )
        );
        let via = m.top_via().unwrap();
        assert_eq!(via.param("rport"), Some(Some("40000")));
        assert_eq!(via.param("received"), Some(Some("127.0.0.7")));
        assert_eq!(
            Some(via),
            Via::parse(m.header_values("Via")[0]).as_ref(),
            "the typed Via says what the header line says"
        );
    }

    #[test]
    fn typed_headers_follow_every_change_to_the_lines() {
        let mut m = parse(OPTIONS.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(m.call_id(), "c1");
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.from_uri(), Some("sip:pbx@127.0.0.1"));
        assert_eq!(m.to_tag(), None);
        m.remove_header("cseq");
        assert_eq!(m.cseq(), None);
        m.push_header("CSeq", "2 OPTIONS");
        assert_eq!(m.cseq(), Some((2, "OPTIONS")));
        m.remove_header("Via");
        assert!(m.top_via().is_none());
        m.push_header("Contact", "\"A\" <sip:a@127.0.0.9:5070>;expires=60");
        assert_eq!(m.contact_uri(), Some("sip:a@127.0.0.9:5070"));
        m.push_header("Record-Route", "<sip:p1;lr>, <sip:p2,x;lr>");
        m.push_header("Record-Route", "<sip:p3;lr>");
        assert_eq!(
            m.record_route(),
            ["<sip:p1;lr>", "<sip:p2,x;lr>", "<sip:p3;lr>"]
        );
        let ok = Message::response_to(&m, 200, "OK", Some("t1"));
        assert_eq!(ok.to_tag(), Some("t1"));
        assert_eq!(ok.cseq(), Some((2, "OPTIONS")));
        assert_eq!(ok.max_forwards(), None);
        let reparsed = parse(&ok.to_bytes(), Framing::Datagram);
        assert!(
            matches!(reparsed, Err(ParseError::Drop(_))),
            "no Via: dropped"
        );
        let mut ok = ok;
        ok.push_header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK9");
        let again = parse(&ok.to_bytes(), Framing::Datagram).unwrap();
        assert_eq!(again.top_via(), ok.top_via());
        assert_eq!(again.to_bytes(), ok.to_bytes());
    }
}
