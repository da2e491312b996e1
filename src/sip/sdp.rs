//! SDP (RFC 4566) for one audio stream and the offer/answer rules (RFC 3264) we need:
//! G.711 PCMU/PCMA and telephone-event, the offerer's codec order, hold (direction
//! attributes and `c=0.0.0.0`), ptime, IPv4 and IPv6. Small, strict and panic-free.
//!
//! Owns SDP text <-> [`SessionDescription`] and [`NegotiatedMedia`]; must not touch RTP.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Largest SDP body we parse.
pub const MAX_SDP_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to an offer with this direction.
    fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// May the side with this direction send media?
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// The G.711 codecs we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub rtpmaps: Vec<RtpMap>,
    pub direction: Option<Direction>,
    pub ptime: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is malformed: {0}")]
    Malformed(String),
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("no common codec: we speak PCMU (0) and PCMA (8)")]
    NoCommonCodec,
}

/// What both sides agreed for the audio stream, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub codec: Codec,
    /// Where to send RTP (the port is 0 when the stream is rejected/disabled).
    pub remote_rtp: SocketAddr,
    /// RFC 4733 payload type the peer uses for DTMF, if it offered telephone-event.
    pub telephone_event_pt: Option<u8>,
    /// Our direction: `RecvOnly`/`Inactive` mean the peer put us on hold.
    pub direction: Direction,
    /// Packetisation time in ms (20 when the peer did not say).
    pub ptime: u32,
}

impl NegotiatedMedia {
    /// The peer holds the call (we must not send audio).
    pub fn on_hold(&self) -> bool {
        !self.direction.sends()
    }
}

fn malformed(what: impl Into<String>) -> SdpError {
    SdpError::Malformed(what.into())
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_whitespace();
    let (net, kind, addr) = (parts.next(), parts.next(), parts.next());
    if net != Some("IN") {
        return Err(malformed("c= network type is not IN"));
    }
    let addr = addr.ok_or_else(|| malformed("c= without an address"))?;
    // Multicast TTL suffix (`/127`) is not for us; strip it.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| malformed(format!("c= address `{addr:.40}` is not an IP address")))?;
    match (kind, ip) {
        (Some("IP4"), IpAddr::V4(_)) | (Some("IP6"), IpAddr::V6(_)) => Ok(ip),
        _ => Err(malformed("c= address type does not match the address")),
    }
}

fn parse_direction(attr: &str) -> Option<Direction> {
    match attr {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// Parses an SDP body. Unknown lines and attributes are ignored; what we rely on is strict.
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(malformed("body too large"));
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let mut session = SessionDescription {
        connection: None,
        direction: None,
        media: Vec::new(),
    };
    let mut seen_version = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(malformed(format!("line without `=`: {line:.40}")));
        };
        match kind {
            "v" => {
                if value.trim() != "0" {
                    return Err(malformed("v= is not 0"));
                }
                seen_version = true;
            }
            "c" => {
                let ip = parse_connection(value)?;
                match session.media.last_mut() {
                    Some(m) => m.connection = Some(ip),
                    None => session.connection = Some(ip),
                }
            }
            "m" => session.media.push(parse_media_line(value)?),
            "a" => apply_attribute(&mut session, value)?,
            _ => {}
        }
    }
    if !seen_version {
        return Err(malformed("missing v= line"));
    }
    Ok(session)
}

/// An `m=` line: media, port, proto and formats; its attributes follow on `a=` lines.
fn parse_media_line(value: &str) -> Result<MediaDescription, SdpError> {
    let mut parts = value.split_whitespace();
    let media = parts.next().ok_or_else(|| malformed("empty m= line"))?;
    let port = parts
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| malformed("m= port is not a number"))?;
    let proto = parts.next().ok_or_else(|| malformed("m= without proto"))?;
    Ok(MediaDescription {
        media: media.to_string(),
        port,
        proto: proto.to_string(),
        formats: parts.map(str::to_string).collect(),
        connection: None,
        rtpmaps: Vec::new(),
        direction: None,
        ptime: None,
    })
}

/// An `a=` line: a direction applies to the session or the last media; rtpmap and ptime to
/// the last media; others are ignored.
fn apply_attribute(session: &mut SessionDescription, value: &str) -> Result<(), SdpError> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    let direction = parse_direction(name);
    match session.media.last_mut() {
        None => {
            if direction.is_some() {
                session.direction = direction;
            }
        }
        Some(m) => {
            if direction.is_some() {
                m.direction = direction;
            } else if name == "rtpmap" {
                m.rtpmaps.push(parse_rtpmap(arg)?);
            } else if name == "ptime" {
                m.ptime = arg.trim().parse().ok().filter(|p| (10..=200).contains(p));
            }
        }
    }
    Ok(())
}

fn parse_rtpmap(arg: &str) -> Result<RtpMap, SdpError> {
    let (pt, encoding) = arg
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| malformed("bad a=rtpmap"))?;
    let payload_type = pt
        .parse::<u8>()
        .ok()
        .filter(|p| *p < 128)
        .ok_or_else(|| malformed("a=rtpmap payload type is not 0..127"))?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().unwrap_or("").to_string();
    let clock_rate = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| malformed("a=rtpmap without a clock rate"))?;
    Ok(RtpMap {
        payload_type,
        encoding: name,
        clock_rate,
    })
}

impl SessionDescription {
    fn audio(&self) -> Result<&MediaDescription, SdpError> {
        self.media
            .iter()
            .find(|m| m.media == "audio")
            .ok_or(SdpError::NoAudio)
    }

    /// Negotiates an incoming offer (or an answer to our offer): first codec in the peer's
    /// order that we speak, its telephone-event PT, the direction we take, ptime.
    pub fn negotiate(&self) -> Result<NegotiatedMedia, SdpError> {
        let audio = self.audio()?;
        let mut codec = None;
        let mut telephone_event_pt = None;
        for format in &audio.formats {
            let Ok(pt) = format.parse::<u8>() else {
                continue;
            };
            let map = audio.rtpmaps.iter().find(|m| m.payload_type == pt);
            let named = |name: &str| {
                map.is_some_and(|m| m.encoding.eq_ignore_ascii_case(name) && m.clock_rate == 8000)
            };
            let found = match pt {
                0 if map.is_none() || named("PCMU") => Some(Codec::Pcmu),
                8 if map.is_none() || named("PCMA") => Some(Codec::Pcma),
                _ if named("PCMU") => Some(Codec::Pcmu),
                _ if named("PCMA") => Some(Codec::Pcma),
                _ => None,
            };
            if codec.is_none() {
                codec = found;
            }
            if telephone_event_pt.is_none() && named("telephone-event") {
                telephone_event_pt = Some(pt);
            }
        }
        let codec = codec.ok_or(SdpError::NoCommonCodec)?;
        let ip = audio
            .connection
            .or(self.connection)
            .ok_or_else(|| malformed("no c= line for the audio stream"))?;
        let peer_direction = audio
            .direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv);
        // RFC 2543 hold: c=0.0.0.0 means "do not send to me".
        let peer_direction = if ip.is_unspecified() || audio.port == 0 {
            match peer_direction {
                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                _ => Direction::Inactive,
            }
        } else {
            peer_direction
        };
        // Offer or answer, the peer's direction mirrored is ours.
        let direction = peer_direction.answer();
        Ok(NegotiatedMedia {
            codec,
            remote_rtp: SocketAddr::new(ip, audio.port),
            telephone_event_pt,
            direction,
            ptime: audio.ptime.unwrap_or(20),
        })
    }
}

/// Writes our SDP: `negotiated` gives codec, DTMF PT, direction and ptime for an answer;
/// `None` writes an offer of PCMU, PCMA and telephone-event/8000 (PT 101), sendrecv.
pub fn write(
    local_rtp: SocketAddr,
    session_id: u64,
    version: u64,
    negotiated: Option<&NegotiatedMedia>,
) -> Vec<u8> {
    let ip_kind = |ip: IpAddr| if ip.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local_rtp.ip();
    let mut s = String::new();
    let _ = write!(
        s,
        "v=0\r\no=hotlined {session_id} {version} IN {} {ip}\r\ns=hotlined\r\nc=IN {} {ip}\r\nt=0 0\r\n",
        ip_kind(ip),
        ip_kind(ip)
    );
    let (codecs, te_pt, direction, ptime) = match negotiated {
        Some(n) => (vec![n.codec], n.telephone_event_pt, n.direction, n.ptime),
        None => (
            vec![Codec::Pcmu, Codec::Pcma],
            Some(101),
            Direction::SendRecv,
            20,
        ),
    };
    let mut formats: Vec<String> = codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    if let Some(pt) = te_pt {
        formats.push(pt.to_string());
    }
    let _ = write!(
        s,
        "m=audio {} RTP/AVP {}\r\n",
        local_rtp.port(),
        formats.join(" ")
    );
    for c in &codecs {
        let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
    }
    if let Some(pt) = te_pt {
        let _ = write!(
            s,
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:{ptime}\r\na={}\r\n", direction.attribute());
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(m: &str, extra: &str) -> SessionDescription {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m}\r\n{extra}"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn follows_offerer_codec_order_and_echoes_telephone_event_pt() {
        let o = offer(
            "m=audio 4000 RTP/AVP 8 0 96",
            "a=rtpmap:96 telephone-event/8000\r\na=ptime:30\r\n",
        );
        let n = o.negotiate().unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event_pt, Some(96));
        assert_eq!(n.remote_rtp, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(n.ptime, 30);
        assert_eq!(n.direction, Direction::SendRecv);
        let answer =
            String::from_utf8(write("127.0.0.1:20000".parse().unwrap(), 1, 1, Some(&n))).unwrap();
        assert!(
            answer.contains("m=audio 20000 RTP/AVP 8 96\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:96 telephone-event/8000"));
        assert!(answer.contains("a=ptime:30"));
        let n0 = offer("m=audio 4000 RTP/AVP 0 8", "").negotiate().unwrap();
        assert_eq!(n0.codec, Codec::Pcmu);
        assert_eq!(n0.telephone_event_pt, None);
    }

    #[test]
    fn no_common_codec_and_malformed() {
        let o = offer("m=audio 4000 RTP/AVP 18 9", "a=rtpmap:18 G729/8000\r\n");
        assert_eq!(o.negotiate(), Err(SdpError::NoCommonCodec));
        // PT 0 with a rtpmap naming something else is not PCMU.
        let o = offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 OPUS/48000\r\n");
        assert_eq!(o.negotiate(), Err(SdpError::NoCommonCodec));
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"v=0\r\nc=IN IP4 999.1.1.1\r\n").is_err());
        assert!(parse(b"v=0\r\nc=IN IP6 127.0.0.1\r\n").is_err());
        assert!(parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
        assert!(parse(&[0xff, 0xfe, 0x00]).is_err());
        let no_c = parse(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
        assert!(no_c.negotiate().is_err());
        assert_eq!(
            parse(b"v=0\r\n").unwrap().negotiate(),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn hold_forms() {
        for (extra, expect) in [
            ("a=sendonly\r\n", Direction::RecvOnly),
            ("a=inactive\r\n", Direction::Inactive),
            ("a=recvonly\r\n", Direction::SendOnly),
            ("a=sendrecv\r\n", Direction::SendRecv),
        ] {
            let n = offer("m=audio 4000 RTP/AVP 0", extra).negotiate().unwrap();
            assert_eq!(n.direction, expect, "{extra}");
        }
        let old_style = parse(b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n")
            .unwrap()
            .negotiate()
            .unwrap();
        assert!(old_style.on_hold());
        // Session-level direction applies when the media line has none.
        let session_level =
            parse(b"v=0\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n")
                .unwrap();
        assert!(session_level.negotiate().unwrap().on_hold());
    }

    #[test]
    fn ipv6_connection_lines() {
        let s = parse(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::1\r\n").unwrap();
        let n = s.negotiate().unwrap();
        assert_eq!(n.remote_rtp, "[::1]:4000".parse().unwrap());
        let ours = String::from_utf8(write("[::1]:20000".parse().unwrap(), 7, 1, None)).unwrap();
        assert!(ours.contains("c=IN IP6 ::1\r\n"));
        let back = parse(ours.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(back.remote_rtp, "[::1]:20000".parse().unwrap());
        assert_eq!(back.telephone_event_pt, Some(101));
    }

    #[test]
    fn our_offer_lists_both_codecs() {
        let ours =
            String::from_utf8(write("127.0.0.1:20000".parse().unwrap(), 7, 1, None)).unwrap();
        assert!(ours.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{ours}");
        assert!(ours.contains("a=sendrecv"));
    }
}
