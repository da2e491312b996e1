//! RFC 3261 §12 dialog state: identifiers, CSeq counters, remote target and route set, and
//! building the in-dialog requests (ACK for 2xx, BYE, re-INVITE) that follow them.
//!
//! Owns dialog bookkeeping only; must not send, time or decide anything.

use super::message::{Message, host_port_of, uri_of};
use super::transaction::Peer;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From/To header value, tag included.
    pub local_party: String,
    /// The peer's From/To header value, tag included.
    pub remote_party: String,
    /// Where in-dialog requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Route set from Record-Route (loose routing: `;lr` proxies such as kamailio).
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// The transport the dialog was set up on, used when no better next hop is known.
    pub peer: Peer,
}

impl Dialog {
    /// Dialog as UAS, from the INVITE we are answering with `local_tag`.
    pub fn from_incoming_invite(invite: &Message, local_tag: &str, peer: Peer) -> Dialog {
        let to = invite.header("To").unwrap_or("");
        Dialog {
            call_id: invite.call_id().to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: invite.from_tag().unwrap_or("").to_string(),
            local_party: format!("{to};tag={local_tag}"),
            remote_party: invite.header("From").unwrap_or("").to_string(),
            remote_target: invite.contact_uri().unwrap_or_default().to_string(),
            route_set: invite.record_route().to_vec(),
            local_cseq: 0,
            remote_cseq: invite.cseq().map_or(0, |(n, _)| n),
            peer,
        }
    }

    /// Dialog as UAC, from our INVITE and the 2xx that answered it.
    pub fn from_answered_invite(invite: &Message, ok: &Message, peer: Peer) -> Dialog {
        let mut route_set = ok.record_route().to_vec();
        route_set.reverse();
        let to = ok.header("To").unwrap_or("");
        Dialog {
            call_id: invite.call_id().to_string(),
            local_tag: invite.from_tag().unwrap_or("").to_string(),
            remote_tag: ok.to_tag().unwrap_or("").to_string(),
            local_party: invite.header("From").unwrap_or("").to_string(),
            remote_party: to.to_string(),
            remote_target: ok
                .contact_uri()
                .unwrap_or_else(|| invite.uri().unwrap_or(""))
                .to_string(),
            route_set,
            local_cseq: invite.cseq().map_or(1, |(n, _)| n),
            remote_cseq: 0,
            peer,
        }
    }

    /// Does an incoming request's From/To tags belong to this dialog?
    pub fn matches(&self, request: &Message) -> bool {
        request.call_id() == self.call_id
            && request.to_tag() == Some(self.local_tag.as_str())
            && request.from_tag().unwrap_or("") == self.remote_tag
    }

    /// Builds an in-dialog request. ACK reuses `ack_cseq`; others take the next CSeq.
    pub fn request(&mut self, method: &str, via: String, ack_cseq: Option<u32>) -> Message {
        let cseq = match ack_cseq {
            Some(n) => n,
            None => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        let target = if self.remote_target.is_empty() {
            "sip:invalid".to_string()
        } else {
            self.remote_target.clone()
        };
        let mut m = Message::request(method, &target);
        m.push_header("Via", via);
        for route in &self.route_set {
            m.push_header("Route", route.clone());
        }
        m.push_header("Max-Forwards", "70");
        m.push_header("From", self.local_party.clone());
        m.push_header("To", self.remote_party.clone());
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", format!("{cseq} {method}"));
        m
    }

    /// Where in-dialog requests are sent: the first route, else the remote target, when
    /// it names an IP literal; otherwise back to the address the dialog came from (we do no
    /// DNS). The transport kind follows the dialog's.
    pub fn next_hop(&self) -> Peer {
        let uri = self
            .route_set
            .first()
            .map(|r| uri_of(r).to_string())
            .unwrap_or_else(|| self.remote_target.clone());
        let addr = host_port_of(&uri).and_then(|(host, port)| {
            let ip: IpAddr = host.parse().ok()?;
            Some(SocketAddr::new(ip, port.unwrap_or(5060)))
        });
        match (addr, self.peer) {
            (Some(addr), Peer::Udp(_)) => Peer::Udp(addr),
            (Some(addr), Peer::Tcp { addr: old, conn }) => Peer::Tcp {
                addr,
                conn: conn.filter(|_| old == addr),
            },
            (None, peer) => peer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Framing, parse};

    #[test]
    fn uas_dialog_uses_record_route_and_contact() {
        let invite = "INVITE sip:hotline@127.0.0.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKp\r\n\
            Record-Route: <sip:127.0.0.5;lr>, <sip:127.0.0.6:5080;lr>\r\n\
            From: <sip:caller@pbx>;tag=rt\r\n\
            To: <sip:hotline@127.0.0.1>\r\n\
            Call-ID: d1\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\n\
            Contact: <sip:caller@127.0.0.9:5070>\r\nContent-Length: 0\r\n\r\n";
        let invite = parse(invite.as_bytes(), Framing::Datagram).unwrap();
        let peer = Peer::Udp("127.0.0.5:5060".parse().unwrap());
        let mut d = Dialog::from_incoming_invite(&invite, "lt", peer);
        assert_eq!(d.remote_cseq, 7);
        assert_eq!(d.next_hop(), Peer::Udp("127.0.0.5:5060".parse().unwrap()));
        let bye = d.request(
            "BYE",
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx".into(),
            None,
        );
        assert_eq!(bye.uri(), Some("sip:caller@127.0.0.9:5070"));
        assert_eq!(
            bye.header_values("Route"),
            vec!["<sip:127.0.0.5;lr>", "<sip:127.0.0.6:5080;lr>"]
        );
        assert_eq!(bye.to_tag(), Some("rt"));
        assert_eq!(bye.from_tag(), Some("lt"));
        assert_eq!(bye.cseq(), Some((1, "BYE")));
        d.route_set.clear();
        assert_eq!(d.next_hop(), Peer::Udp("127.0.0.9:5070".parse().unwrap()));
    }
}
