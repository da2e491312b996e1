//! SIP messages on the wire: size bounds, compact-header normalisation, parsing with rsip,
//! the mandatory-header checks that decide between "answer 400" and "drop silently", stream
//! framing for TCP, and the small header helpers (Via, tags, CSeq) the other layers need.
//!
//! Owns bytes <-> [`Message`]; must not hold state, timers or sockets.

use std::fmt::Write as _;

/// Largest message we accept on any transport (also the TCP framing bound).
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// Largest start line + header section; anything bigger is dropped unread.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in one message.
pub const MAX_HEADERS: usize = 100;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// A parsed (or locally built) SIP message: start line, headers in order with canonical
/// names, and the body trimmed to its Content-Length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

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
];

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(pos) = find(raw, b"\r\n\r\n") {
        return Some((&raw[..pos], &raw[pos + 4..]));
    }
    find(raw, b"\n\n").map(|pos| (&raw[..pos], &raw[pos + 2..]))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites the header section into the form rsip 0.4 understands: rsip does not know the
/// compact header names (`v f t i m c l k s e`), folded continuation lines, bare-LF line ends
/// or blanks around the colon, so we expand/unfold/normalise them here before parsing.
/// Returns `Err` with a reason when the head is too large or has too many headers.
pub fn normalise(raw: &[u8]) -> Result<Vec<u8>, String> {
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
    let mut lines: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            let has_header = lines.len() > 1;
            match lines.last_mut() {
                Some(prev) if has_header => {
                    prev.push(' ');
                    prev.push_str(line.trim());
                }
                _ => return Err("continuation line without a header".into()),
            }
            continue;
        }
        if lines.is_empty() {
            lines.push(line.to_string());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            // The line itself is not quoted: it may hold a caller's number.
            return Err(format!("header line {} has no colon", lines.len()));
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
        lines.push(format!("{}: {}", name, value.trim()));
    }
    if lines.len() > MAX_HEADERS + 1 {
        return Err(format!("more than {MAX_HEADERS} header lines"));
    }
    let mut out = Vec::with_capacity(raw.len() + 64);
    for line in &lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
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
    let mut normalised = normalise(raw).map_err(ParseError::Drop)?;
    // rsip only parses SIP/2.0 (and 1.0); a request in another version must still parse so
    // we can answer 505 (RFC 3261 §8.2.1's sibling for versions). Parse it as SIP/2.0.
    let unsupported_version = unsupported_request_version(&normalised);
    if let Some(range) = unsupported_version.clone() {
        normalised.splice(range, b"SIP/2.0".iter().copied());
    }
    // rsip only knows the RFC methods; an extension method must still reach us so we can
    // answer 501. Parse it under a stand-in method and put the real one back.
    let extension_method = extension_method(&normalised);
    if let Some(method) = &extension_method {
        normalised.splice(..method.len(), b"OPTIONS".iter().copied());
    }
    // rsip is nom-based and should not panic, but "no panic ever" on network input is our
    // promise, not rsip's: contain any parser bug to this one message.
    let parsed = std::panic::catch_unwind(|| rsip::SipMessage::try_from(normalised.as_slice()))
        .map_err(|_| ParseError::Drop("parser panicked".into()))?
        // rsip's error quotes the whole message (numbers included): keep it out of logs.
        .map_err(|_| ParseError::Drop("unparseable start line or header".into()))?;
    let mut message = from_rsip(parsed);
    // Counted as we would write it back (Content-Length is always written).
    let header_lines =
        message.headers.len() + usize::from(message.header("Content-Length").is_none());
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
    if let (Some(method), StartLine::Request { method: m, .. }) =
        (extension_method, &mut message.start)
    {
        *m = method;
    }
    if unsupported_version.is_some() {
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

/// Where the version token of a request line sits, if it names a SIP version other than
/// 2.0 (`INVITE sip:a@b SIP/3.0`). Responses and garbage are left to the parser.
fn unsupported_request_version(normalised: &[u8]) -> Option<std::ops::Range<usize>> {
    let line_end = normalised
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(normalised.len());
    let line = &normalised[..line_end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let start = line.iter().rposition(|b| *b == b' ')? + 1;
    let version = &line[start..];
    let is_sip_version = version.len() > 4 && version[..4].eq_ignore_ascii_case(b"SIP/");
    (is_sip_version && !version.eq_ignore_ascii_case(b"SIP/2.0")).then_some(start..line_end)
}

/// The request method if it is a syntactically valid token rsip does not know.
fn extension_method(normalised: &[u8]) -> Option<String> {
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
    let end = normalised.iter().position(|b| *b == b' ')?;
    let token = std::str::from_utf8(&normalised[..end]).ok()?;
    let is_token = !token.is_empty()
        && token.len() <= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    let rest = &normalised[end + 1..];
    let line_end = rest.iter().position(|b| *b == b'\r').unwrap_or(rest.len());
    let is_request_line = rest[..line_end].ends_with(b" SIP/2.0");
    (is_token && is_request_line && !RSIP_METHODS.iter().any(|m| m.eq_ignore_ascii_case(token)))
        .then(|| token.to_string())
}

fn from_rsip(parsed: rsip::SipMessage) -> Message {
    let (start, headers, body) = match parsed {
        rsip::SipMessage::Request(r) => (
            StartLine::Request {
                method: r.method.to_string(),
                uri: r.uri.to_string(),
            },
            r.headers,
            r.body,
        ),
        rsip::SipMessage::Response(r) => {
            let code: u16 = r.status_code.clone().into();
            let reason = r.status_code.to_string();
            let reason = reason
                .split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default();
            (StartLine::Response { code, reason }, r.headers, r.body)
        }
    };
    let headers = headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (name, value) = text.split_once(':')?;
            Some((canonical_name(name.trim()), value.trim().to_string()))
        })
        .collect();
    Message {
        start,
        headers,
        body,
    }
}

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

/// One entry of a Via header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(value: &str) -> Option<Via> {
        let value = value.trim();
        let (proto, rest) = value.split_once(char::is_whitespace)?;
        let transport = proto.rsplit('/').next()?.to_ascii_uppercase();
        if !proto.to_ascii_uppercase().starts_with("SIP/2.0/") {
            return None;
        }
        let mut parts = rest.trim().split(';');
        let sent_by = parts.next()?.trim();
        let (host, port) = split_host_port(sent_by)?;
        let params = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                None => (p.trim().to_ascii_lowercase(), None),
            })
            .collect();
        Some(Via {
            transport,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into parts.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None if !s.is_empty() => Some((s.to_string(), None)),
        None => None,
    }
}

/// Splits a header value at top-level commas (not inside `<>` or quotes).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The `tag` parameter of a From/To value.
pub fn tag_of(value: &str) -> Option<&str> {
    let params = match value.rfind('>') {
        Some(pos) => &value[pos + 1..],
        None => value.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1`) or addr-spec (`sip:a@b;tag=1`).
pub fn uri_of(value: &str) -> &str {
    if let (Some(a), Some(b)) = (value.find('<'), value.find('>'))
        && a < b
    {
        return &value[a + 1..b];
    }
    value.split(';').next().unwrap_or("").trim()
}

/// The user part of a SIP URI (`sip:4008@host` → `4008`), if any.
pub fn user_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    Some(user.split(';').next().unwrap_or(user))
}

/// `host` and `port` of a SIP URI (`sip:u@10.0.0.1:5070;transport=tcp`).
pub fn host_port_of(uri: &str) -> Option<(String, Option<u16>)> {
    let rest = uri.split_once(':')?.1;
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hostport = rest.split([';', '?']).next()?;
    split_host_port(hostport)
}

impl Message {
    pub fn request(method: &str, uri: &str) -> Message {
        Message {
            start: StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` with its Via, From, To, Call-ID and CSeq copied; `to_tag`
    /// is added to To when it has none yet.
    pub fn response_to(
        request: &Message,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Message {
        let mut response = Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for (name, value) in &request.headers {
            let copy = matches!(name.as_str(), "Via" | "From" | "Call-ID" | "CSeq");
            if copy {
                response.headers.push((name.clone(), value.clone()));
            } else if name == "To" {
                let mut to = value.clone();
                if let Some(tag) = to_tag
                    && tag_of(value).is_none()
                {
                    let _ = write!(to, ";tag={tag}");
                }
                response.headers.push((name.clone(), to));
            }
        }
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
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn top_via(&self) -> Option<Via> {
        self.header_values("Via")
            .first()
            .and_then(|v| Via::parse(v))
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("")
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.header("From").and_then(tag_of)
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.header("To").and_then(tag_of)
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let value = self.header("CSeq")?;
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        parts.next().is_none().then_some((number, method))
    }

    pub fn max_forwards(&self) -> Option<u8> {
        self.header("Max-Forwards")?.trim().parse().ok()
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

    const OPTIONS: &str = "OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n\
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
    fn foreign_versions_are_found_in_request_lines_only() {
        let v3 = b"INVITE sip:a@b SIP/3.0\r\nVia: x\r\n\r\n";
        assert_eq!(unsupported_request_version(v3), Some(15..22));
        assert_eq!(unsupported_request_version(OPTIONS.as_bytes()), None);
        assert_eq!(unsupported_request_version(b"SIP/3.0 200 OK\r\n"), None);
        assert_eq!(unsupported_request_version(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(unsupported_request_version(b"INVITE sip:a SIP/\r\n"), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(tag_of("\"A\" <sip:a@b;x=y>;tag=77"), Some("77"));
        assert_eq!(tag_of("sip:a@b;tag=9"), Some("9"));
        assert_eq!(uri_of("\"A\" <sip:a@b;lr>;tag=1"), "sip:a@b;lr");
        assert_eq!(user_of("sip:4008@host"), Some("4008"));
        assert_eq!(
            host_port_of("sip:u@[::1]:5070;transport=tcp"),
            Some(("::1".into(), Some(5070)))
        );
        assert_eq!(
            split_list("<sip:a,b>, <sip:c>"),
            vec!["<sip:a,b>", "<sip:c>"]
        );
    }
}
