//! Bytes to [`Message`]: size bounds, one pass over the header section (compact names
//! expanded, folded lines joined, blanks around the colon trimmed, header names checked as
//! tokens), the start line read by rsip, and the mandatory-header checks that decide between
//! "answer 400" and "drop silently"; plus stream framing for TCP.
//!
//! Owns the wire grammar and the checks; must not hold state, timers or sockets.

use super::{Message, StartLine};

/// Largest message we accept on any transport (also the TCP framing bound).
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// Largest start line + header section; anything bigger is dropped unread.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in one message.
pub const MAX_HEADERS: usize = 100;

/// Why an incoming message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not worth an answer (garbage, unparseable, a broken response): drop it.
    Drop(String),
    /// A request we understood well enough to answer: send `response` (a 400 or similar).
    Reject {
        response: Box<Message>,
        reason: String,
    },
}

/// How the message arrived: datagrams may carry a body longer than Content-Length
/// (trimmed) but never shorter; stream messages are already framed by Content-Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Datagram,
    Stream,
}

/// Compact header forms (RFC 3261 §7.3.3 and friends) and their full names.
const COMPACT_FORMS: &[(char, &str)] = &[
    ('v', "Via"),
    ('f', "From"),
    ('t', "To"),
    ('i', "Call-ID"),
    ('m', "Contact"),
    ('c', "Content-Type"),
    ('l', "Content-Length"),
    ('k', "Supported"),
    ('s', "Subject"),
    ('e', "Content-Encoding"),
    ('x', "Session-Expires"),
];

/// Why a message could not be read at all (start line or header grammar). The message
/// itself is not quoted: it may hold a caller's number.
const UNPARSEABLE: &str = "unparseable start line or header";

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(pos) = find(raw, b"\r\n\r\n") {
        return Some((&raw[..pos], &raw[pos + 4..]));
    }
    find(raw, b"\n\n").map(|pos| (&raw[..pos], &raw[pos + 2..]))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A message cut into its parts by [`split_message`].
struct Parts<'a> {
    start_line: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

/// A header name as RFC 3261 §25.1 spells `token` (what rsip accepted before us).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The one pass over the header section: splits it into the start line and (name, value)
/// pairs, expanding compact names, joining folded continuation lines, accepting bare-LF
/// line ends and trimming blanks around the colon. Returns `Err` with a reason when the
/// head is too large, not text, or has too many or malformed header lines.
fn split_message(raw: &[u8]) -> Result<Parts<'_>, String> {
    let raw = skip_leading_crlf(raw);
    let (head, body) = split_head(raw).unwrap_or((raw, &[]));
    if head.len() > MAX_HEAD_BYTES {
        return Err(format!("header section larger than {MAX_HEAD_BYTES} bytes"));
    }
    let head = std::str::from_utf8(head).map_err(|_| "header section is not UTF-8".to_string())?;
    if head
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err("control characters in the header section".into());
    }
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = headers.last_mut() else {
                return Err("continuation line without a header".into());
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            // The line itself is not quoted: it may hold a caller's number.
            return Err(format!("header line {} has no colon", headers.len() + 1));
        };
        let name = name.trim();
        let name = match name.chars().next() {
            Some(c) if name.len() == 1 => COMPACT_FORMS
                .iter()
                .find(|(short, _)| *short == c.to_ascii_lowercase())
                .map(|(_, long)| *long)
                .unwrap_or(name),
            _ => name,
        };
        if !is_token(name) {
            return Err(UNPARSEABLE.into());
        }
        headers.push((canonical_name(name), value.trim().to_string()));
    }
    if headers.len() > MAX_HEADERS {
        return Err(format!("more than {MAX_HEADERS} header lines"));
    }
    if headers.is_empty() {
        // Nothing to answer to: a response needs at least the request's Via.
        return Err("no header lines".into());
    }
    for (_, value) in &mut headers {
        // Folding may have left blanks at either end (an empty first line, a blank fold).
        if value.starts_with(' ') || value.ends_with(' ') {
            *value = value.trim().to_string();
        }
    }
    Ok(Parts {
        start_line,
        headers,
        body,
    })
}

fn skip_leading_crlf(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(raw.len());
    &raw[start..]
}

/// Is this chunk only CRLF keep-alives (RFC 5626 style pings)?
pub fn is_keepalive(raw: &[u8]) -> bool {
    skip_leading_crlf(raw).is_empty()
}

/// Result of looking for one complete message at the start of a TCP buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamFrame {
    /// The first `usize` bytes are one message (leading CRLFs included).
    Complete(usize),
    /// Need more bytes.
    Incomplete,
    /// The stream cannot be framed (too big, bad Content-Length): close the connection.
    Invalid(String),
}

/// Finds the end of the first message in a TCP byte stream (framing by Content-Length).
pub fn frame_stream(buf: &[u8], max_message: usize) -> StreamFrame {
    let skipped = buf.len() - skip_leading_crlf(buf).len();
    let rest = &buf[skipped..];
    let Some(head_end) = find(rest, b"\r\n\r\n") else {
        if rest.len() > MAX_HEAD_BYTES {
            return StreamFrame::Invalid("header section too large".into());
        }
        return StreamFrame::Incomplete;
    };
    let head = String::from_utf8_lossy(&rest[..head_end]);
    let mut content_length = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                match value.trim().parse::<usize>() {
                    Ok(n) => content_length = n,
                    Err(_) => return StreamFrame::Invalid("bad Content-Length".into()),
                }
            }
        }
    }
    // Checked: a 20-digit Content-Length must not wrap around into a small frame.
    let too_big = || StreamFrame::Invalid(format!("message larger than {max_message} bytes"));
    let Some(length) = (head_end + 4).checked_add(content_length) else {
        return too_big();
    };
    if length > max_message {
        return too_big();
    }
    // At most `max_message` beyond what is in `buf`: cannot overflow.
    let total = skipped + length;
    if buf.len() < total {
        StreamFrame::Incomplete
    } else {
        StreamFrame::Complete(total)
    }
}

/// Parses and checks one message. Requests missing a mandatory header get a 400 naming it;
/// anything unparseable is dropped. Never panics.
pub fn parse(raw: &[u8], framing: Framing) -> Result<Message, ParseError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::Drop("message too large".into()));
    }
    let parts = split_message(raw).map_err(ParseError::Drop)?;
    let (start, unsupported_version) = parse_start_line(parts.start_line)?;
    let mut message = Message::from_parts(start, parts.headers, parts.body.to_vec());
    // Counted as we would write it back (Content-Length is always written).
    let header_lines =
        message.headers().len() + usize::from(message.header("Content-Length").is_none());
    if header_lines > MAX_HEADERS {
        return Err(ParseError::Drop(format!(
            "more than {MAX_HEADERS} header lines"
        )));
    }
    if message
        .code()
        .is_some_and(|code| !(100..=699).contains(&code))
    {
        return Err(ParseError::Drop("status code outside 100..=699".into()));
    }
    if unsupported_version {
        let reason = "Version Not Supported".to_string();
        return if check_mandatory(&message).is_ok() && message.method() != Some("ACK") {
            let response = Message::response_to(&message, 505, &reason, None);
            Err(ParseError::Reject {
                response: Box::new(response),
                reason,
            })
        } else {
            Err(ParseError::Drop(reason))
        };
    }
    let is_request = message.is_request();
    if let Err(reason) = check(&mut message, framing) {
        return if is_request && message.method() != Some("ACK") {
            let response = Message::response_to(&message, 400, &reason, None);
            Err(ParseError::Reject {
                response: Box::new(response),
                reason,
            })
        } else {
            Err(ParseError::Drop(reason))
        };
    }
    Ok(message)
}

/// Reads the start line with rsip (method, Request-URI and version, or status). Also says
/// whether a request named a SIP version other than 2.0, which gets 505 once the headers
/// show where to send it.
fn parse_start_line(line: &str) -> Result<(StartLine, bool), ParseError> {
    let mut line = line.as_bytes().to_vec();
    // rsip only parses SIP/2.0 (and 1.0); a request in another version must still parse so
    // we can answer 505 (RFC 3261 §8.2.1's sibling for versions). Parse it as SIP/2.0.
    let unsupported_version = unsupported_request_version(&line);
    if let Some(range) = unsupported_version.clone() {
        line.splice(range, b"SIP/2.0".iter().copied());
    }
    // rsip only knows the RFC methods; an extension method must still reach us so we can
    // answer 501. Parse it under a stand-in method and put the real one back.
    let extension_method = extension_method(&line);
    if let Some(method) = &extension_method {
        line.splice(..method.len(), b"OPTIONS".iter().copied());
    }
    // rsip wants a whole message: give it the start line and an empty header section.
    line.extend_from_slice(b"\r\n\r\n");
    // rsip is nom-based and should not panic, but "no panic ever" on network input is our
    // promise, not rsip's: contain any parser bug to this one message.
    let parsed = std::panic::catch_unwind(|| rsip::SipMessage::try_from(line.as_slice()))
        .map_err(|_| ParseError::Drop("parser panicked".into()))?
        // rsip's error quotes the whole line (numbers included): keep it out of logs.
        .map_err(|_| ParseError::Drop(UNPARSEABLE.into()))?;
    let start = match parsed {
        rsip::SipMessage::Request(r) => StartLine::Request {
            method: extension_method.unwrap_or_else(|| r.method.to_string()),
            uri: r.uri.to_string(),
        },
        rsip::SipMessage::Response(r) => {
            let code: u16 = r.status_code.clone().into();
            let reason = r.status_code.to_string();
            let reason = reason
                .split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default();
            StartLine::Response { code, reason }
        }
    };
    Ok((start, unsupported_version.is_some()))
}

/// Where the version token of a request line sits, if it names a SIP version other than
/// 2.0 (`INVITE sip:a@b SIP/3.0`). Responses and garbage are left to the parser.
fn unsupported_request_version(line: &[u8]) -> Option<std::ops::Range<usize>> {
    let line_end = line
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(line.len());
    let line = &line[..line_end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let start = line.iter().rposition(|b| *b == b' ')? + 1;
    let version = &line[start..];
    let is_sip_version = version.len() > 4 && version[..4].eq_ignore_ascii_case(b"SIP/");
    (is_sip_version && !version.eq_ignore_ascii_case(b"SIP/2.0")).then_some(start..line_end)
}

/// The request method if it is a syntactically valid token rsip does not know.
fn extension_method(line: &[u8]) -> Option<String> {
    const RSIP_METHODS: &[&str] = &[
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    ];
    let end = line.iter().position(|b| *b == b' ')?;
    let token = std::str::from_utf8(&line[..end]).ok()?;
    let is_token = !token.is_empty()
        && token.len() <= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    let rest = &line[end + 1..];
    let line_end = rest.iter().position(|b| *b == b'\r').unwrap_or(rest.len());
    let is_request_line = rest[..line_end].ends_with(b" SIP/2.0");
    (is_token && is_request_line && !RSIP_METHODS.iter().any(|m| m.eq_ignore_ascii_case(token)))
        .then(|| token.to_string())
}

/// The usual spelling of the headers we read or copy, whatever case the peer used.
fn canonical_name(name: &str) -> String {
    const KNOWN: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Length",
        "Content-Type",
        "Record-Route",
        "Route",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| k.to_string())
        .unwrap_or_else(|| name.to_string())
}
/// The headers without which no response can be built (RFC 3261 §8.1.1).
fn check_mandatory(message: &Message) -> Result<(), String> {
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        match message.header(name) {
            None => return Err(format!("Missing {name} header")),
            Some(v) if v.trim().is_empty() => return Err(format!("Empty {name} header")),
            Some(_) => {}
        }
    }
    if message.top_via().is_none() {
        return Err("Bad Via header".into());
    }
    let Some((_, cseq_method)) = message.cseq() else {
        return Err("Bad CSeq header".into());
    };
    if let Some(method) = message.method()
        && cseq_method != method
    {
        return Err("CSeq method does not match the request".into());
    }
    Ok(())
}

fn check(message: &mut Message, framing: Framing) -> Result<(), String> {
    check_mandatory(message)?;
    if let Some(method) = message.method() {
        match message.header("Max-Forwards") {
            None => return Err("Missing Max-Forwards header".into()),
            Some(v) if v.trim().parse::<u8>().is_err() => {
                return Err("Bad Max-Forwards header".into());
            }
            Some(_) => {}
        }
        // An INVITE establishes a dialog, so it must say where to reach the caller
        // (RFC 3261 §8.1.1.8); without it we could never send a BYE.
        if method == "INVITE" {
            match message.header("Contact") {
                None => return Err("Missing Contact header".into()),
                Some(v) if v.trim().is_empty() => return Err("Empty Contact header".into()),
                Some(_) => {}
            }
        }
    }
    match message.header("Content-Length") {
        Some(v) => {
            let declared: usize = v
                .trim()
                .parse()
                .map_err(|_| "Bad Content-Length header".to_string())?;
            if message.body.len() < declared {
                return Err("Content-Length larger than the body".into());
            }
            if message.body.len() > declared {
                if framing == Framing::Stream {
                    return Err("Content-Length smaller than the body".into());
                }
                message.body.truncate(declared);
            }
        }
        None if framing == Framing::Stream && !message.body.is_empty() => {
            return Err("Missing Content-Length header".into());
        }
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::OPTIONS;
    use super::*;

    #[test]
    fn foreign_versions_are_found_in_request_lines_only() {
        let v3 = b"INVITE sip:a@b SIP/3.0\r\nVia: x\r\n\r\n";
        assert_eq!(unsupported_request_version(v3), Some(15..22));
        assert_eq!(unsupported_request_version(OPTIONS.as_bytes()), None);
        assert_eq!(unsupported_request_version(b"SIP/3.0 200 OK\r\n"), None);
        assert_eq!(unsupported_request_version(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(unsupported_request_version(b"INVITE sip:a SIP/\r\n"), None);
    }

    #[test]
    fn a_start_line_broken_over_two_lines_or_no_headers_is_dropped() {
        // rsip used to read a Request-URI across the line break, giving a URI with CRLF in
        // it that we would have written back; the start line is read on its own now.
        let broken = OPTIONS.replacen("OPTIONS sip:", "OPTIONS \r\nsip:", 1);
        assert!(matches!(
            parse(broken.as_bytes(), Framing::Datagram),
            Err(ParseError::Drop(_))
        ));
        let bare = "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\r\n";
        assert_eq!(
            parse(bare.as_bytes(), Framing::Datagram),
            Err(ParseError::Drop("no header lines".into()))
        );
    }

    #[test]
    fn header_names_must_be_tokens_and_folds_are_joined() {
        let bad_name = OPTIONS.replace("Max-Forwards:", "Max Forwards:");
        assert_eq!(
            parse(bad_name.as_bytes(), Framing::Datagram),
            Err(ParseError::Drop(UNPARSEABLE.into()))
        );
        let folded = OPTIONS.replace("Call-ID: c1\r\n", "Call-ID:\r\n  c1\r\n \r\n");
        let m = parse(folded.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(m.call_id(), "c1");
        assert_eq!(m.header("Call-ID"), Some("c1"));
    }
}
