//! Transaction matching (RFC 3261 §17.1.3 and §17.2.3): which transaction a request or a
//! response belongs to.
//!
//! Owns the keys only; must not hold transactions or decide anything about them.

use crate::sip::message::Message;

/// The magic cookie that marks an RFC 3261 branch (unique per transaction).
const MAGIC_COOKIE: &str = "z9hG4bK";

/// A server transaction (RFC 3261 §17.2.3): the top Via's branch, its sent-by and the
/// method, with ACK folded into INVITE (it belongs to the INVITE's transaction) while CANCEL
/// has a transaction of its own. The sent-by keeps apart two senders that happen to use the
/// same branch: the second one's request is a new transaction, not a retransmission.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub branch: String,
    /// The top Via's `host[:port]`, host lowercased (the port as written: 5060 is not
    /// assumed, so `a` and `a:5060` differ, as the RFC's string comparison has it).
    pub sent_by: String,
    pub method: String,
}

impl ServerKey {
    pub fn for_request(request: &Message) -> ServerKey {
        let method = match request.method() {
            Some("ACK") | None => "INVITE",
            Some(m) => m,
        };
        let via = request.top_via();
        let sent_by = via.map_or_else(String::new, |v| match v.port {
            Some(port) => format!("{}:{port}", v.host.to_ascii_lowercase()),
            None => v.host.to_ascii_lowercase(),
        });
        let branch = via
            .and_then(|v| v.branch())
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .map(str::to_string)
            // RFC 2543 peers without a magic-cookie branch: approximate by dialog + CSeq.
            .unwrap_or_else(|| {
                format!(
                    "{}|{}|{}",
                    request.call_id(),
                    request.from_tag().unwrap_or(""),
                    request.cseq().map_or(0, |(n, _)| n)
                )
            });
        ServerKey {
            branch,
            sent_by,
            method: method.to_string(),
        }
    }

    /// The INVITE transaction a CANCEL (or an ACK) with this key refers to.
    pub fn invite(&self) -> ServerKey {
        ServerKey {
            branch: self.branch.clone(),
            sent_by: self.sent_by.clone(),
            method: "INVITE".into(),
        }
    }
}

/// A client transaction: the branch we put in our Via; a CANCEL shares its INVITE's branch
/// but is a transaction of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub branch: String,
    pub cancel: bool,
}

impl ClientKey {
    pub fn new(branch: String) -> ClientKey {
        ClientKey {
            branch,
            cancel: false,
        }
    }

    /// The CANCEL for the INVITE with this key.
    pub fn cancel(&self) -> ClientKey {
        ClientKey {
            branch: self.branch.clone(),
            cancel: true,
        }
    }

    /// The transaction a response answers, if its top Via carries a branch.
    pub fn for_response(response: &Message) -> Option<ClientKey> {
        let branch = response.top_via()?.branch()?.to_string();
        let cancel = matches!(response.cseq(), Some((_, "CANCEL")));
        Some(ClientKey { branch, cancel })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::request;

    #[test]
    fn ack_joins_the_invite_and_cancel_stands_apart() {
        let invite = ServerKey::for_request(&request("INVITE"));
        let ack = ServerKey::for_request(&request("ACK"));
        let cancel = ServerKey::for_request(&request("CANCEL"));
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.invite(), invite);
    }

    #[test]
    fn the_same_branch_from_another_sent_by_is_another_transaction() {
        let with_via = |via: &str| {
            let mut m = request("OPTIONS");
            m.remove_header("Via");
            m.push_header("Via", via);
            ServerKey::for_request(&m)
        };
        let first = with_via("SIP/2.0/UDP pbx.example:5060;branch=z9hG4bKsame");
        let other_port = with_via("SIP/2.0/UDP pbx.example:5062;branch=z9hG4bKsame");
        let other_host = with_via("SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKsame");
        assert_eq!(first.branch, other_port.branch);
        assert_ne!(first, other_port);
        assert_ne!(first, other_host);
        // The same sender, its host written in another case: the same transaction.
        assert_eq!(
            with_via("SIP/2.0/UDP PBX.Example:5060;branch=z9hG4bKsame"),
            first
        );
    }

    #[test]
    fn branch_without_magic_cookie_falls_back_to_dialog_and_cseq() {
        let mut old = request("OPTIONS");
        old.remove_header("Via");
        old.push_header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=1234");
        assert_eq!(ServerKey::for_request(&old).branch, "cid|ours|1");
    }
}
