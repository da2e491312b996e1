//! Outgoing legs and bridging: calls we place for a caller (an agent's phone, a transfer
//! target), their media, the bridge to the caller's audio, and what their end means for the
//! caller, the ACD and the IVR.
//!
//! Owns the legs' lifecycle; must not choose whom to call (the ACD and the IVR do).

use super::{Dispatcher, Work};
use crate::acd::AcdEvent;
use crate::call::journal::Stage;
use crate::call::media_link::MediaLink;
use crate::call::registry::{Leg, LegPurpose, OutLeg};
use crate::call::survey::TransferToSurveyError;
use crate::desk::HungUpBy;
use crate::ivr;
use crate::media::session::{MediaCommand, SessionOptions};
use crate::sip::message::host_port_of;
use crate::sip::sdp::NegotiatedMedia;
use crate::sip::transaction::Peer;
use crate::sip::transport::Request;
use crate::sip::{CallHandle, Command, EndReason, OutgoingCall};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// From-user of calls we place when the caller's number is unknown.
const OUR_USER: &str = "hotline";

/// The next hop for a `sip:user@IP[:port]` URI (we do no DNS): the IP literal, port 5060
/// unless given.
fn peer_of(uri: &str) -> Option<Peer> {
    let (host, port) = host_port_of(uri)?;
    let ip: IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
    Some(Peer::Udp(SocketAddr::new(ip, port.unwrap_or(5060))))
}

/// Connects two legs' audio: what each receives, the other sends (and the caller's
/// recording gets the other leg on its right channel).
fn bridge(caller: &MediaLink, other: &MediaLink) {
    let (to_other, from_caller) = mpsc::unbounded_channel();
    let (to_caller, from_other) = mpsc::unbounded_channel();
    caller.send(MediaCommand::Bridge {
        to: to_other,
        from: from_other,
    });
    other.send(MediaCommand::Bridge {
        to: to_caller,
        from: from_caller,
    });
}

impl Dispatcher {
    /// Places a call to `uri` for the caller `owner` (an agent's phone, a transfer target).
    /// If it cannot be placed, the ACD or the IVR hears so through the work queue.
    pub(super) async fn start_leg(&mut self, owner: CallHandle, purpose: LegPurpose, uri: &str) {
        let Some(call) = self.registry.calls.get(&owner) else {
            return;
        };
        let call_id = call.id.clone();
        let from_user = if call.caller.is_empty() {
            OUR_USER.to_owned()
        } else {
            call.caller.clone()
        };
        let placed = match (peer_of(uri), self.pool.lease()) {
            (Some(peer), Ok(lease)) => {
                let (reply, handle) = oneshot::channel();
                let request = Request::StartCall {
                    call: OutgoingCall {
                        target: uri.to_owned(),
                        peer,
                        from_user,
                        local_rtp: lease.rtp_addr(),
                    },
                    reply,
                };
                match self.sip.send(request).await {
                    Ok(()) => handle.await.ok().map(|h| (h, lease)),
                    Err(_) => None,
                }
            }
            (None, _) => {
                tracing::error!(call = %call_id, uri, "cannot call this URI: it needs an IP address (we do no DNS); fix the configuration");
                None
            }
            (_, Err(error)) => {
                tracing::error!(call = %call_id, %error, "no RTP ports free for the outgoing call");
                None
            }
        };
        let Some((handle, lease)) = placed else {
            self.leg_failed(owner, purpose);
            return;
        };
        tracing::info!(call = %call_id, leg = handle.0, ?purpose, "outgoing call placed");
        self.registry.legs.insert(
            handle,
            OutLeg {
                owner,
                purpose,
                lease: Some(lease),
                media: None,
                answered: false,
                handed_on: false,
            },
        );
        if let Some(call) = self.registry.calls.get_mut(&owner) {
            call.legs.push(handle);
        }
    }

    /// An outgoing call did not come about: the ACD or the IVR moves on.
    fn leg_failed(&mut self, owner: CallHandle, purpose: LegPurpose) {
        let now = Instant::now();
        if !self.registry.calls.contains_key(&owner) {
            return;
        }
        self.work.push_back(match purpose {
            LegPurpose::Agent(agent) => Work::Acd(AcdEvent::OfferRejected {
                call: owner,
                agent,
                now,
            }),
            LegPurpose::Transfer => Work::Ivr(owner, ivr::Event::TransferFailed { now }),
        });
    }

    pub(super) async fn on_leg_answered(&mut self, handle: CallHandle, media: &NegotiatedMedia) {
        let Some(leg) = self.registry.legs.get(&handle) else {
            return;
        };
        let (owner, purpose) = (leg.owner, leg.purpose.clone());
        let lease = self
            .registry
            .legs
            .get_mut(&handle)
            .and_then(|leg| leg.lease.take());
        // The leg's own session, bridged with the caller's below.
        let leg_media = lease.and_then(|lease| {
            let options = self
                .registry
                .calls
                .get(&owner)
                .map(|c| SessionOptions::from_config(&c.config.media))
                .unwrap_or_default();
            self.start_media(lease, media, Leg::Outgoing(handle), options)
                .map_err(|error| {
                    tracing::error!(leg = handle.0, %error, "agent-leg media failed to start")
                })
                .ok()
        });
        let Some(leg) = self.registry.legs.get_mut(&handle) else {
            return;
        };
        leg.answered = true;
        if leg_media.is_some() {
            leg.media = leg_media;
        }
        let Some(call) = self.registry.calls.get_mut(&owner) else {
            // The caller left meanwhile.
            self.sip_command(Command::Hangup { call: handle }).await;
            return;
        };
        if let (Some(caller_media), Some(leg_media)) = (&call.media, &leg.media) {
            bridge(caller_media, leg_media);
        }
        let now = Instant::now();
        match purpose {
            LegPurpose::Agent(agent) => {
                self.desk.answered(&call.id, &agent);
                self.work.push_back(Work::Acd(AcdEvent::OfferAnswered {
                    call: owner,
                    agent: agent.clone(),
                    now,
                }));
                self.work
                    .push_back(Work::Ivr(owner, ivr::Event::AgentAnswered { agent, now }));
            }
            LegPurpose::Transfer => {
                call.stage = Stage::Transferred;
                tracing::info!(call = %call.id, "transfer target answered: connected");
                self.work
                    .push_back(Work::Ivr(owner, ivr::Event::TransferAnswered { now }));
            }
        }
    }

    pub(super) async fn end_leg(&mut self, handle: CallHandle, reason: &EndReason) {
        let Some(leg) = self.registry.legs.remove(&handle) else {
            return;
        };
        tracing::info!(leg = handle.0, ?reason, purpose = ?leg.purpose, "outgoing call ended");
        if let (true, LegPurpose::Agent(_), false) = (leg.answered, &leg.purpose, leg.handed_on)
            && let Some(call) = self.registry.calls.get(&leg.owner)
        {
            // The desk decides what the agent does next (wrap-up, a pending request); the
            // ACD follows its orders. A leg a desktop transferred away was already reported
            // ended: said again, it could end the next agent's talk.
            let who = match reason {
                EndReason::RemoteHangup => HungUpBy::Agent,
                _ => HungUpBy::System,
            };
            self.desk.agent_left(&call.id, who);
        }
        let Some(call) = self.registry.calls.get_mut(&leg.owner) else {
            // Dropping the leg drops its media link and lease: ports return to the pool.
            return;
        };
        call.legs.retain(|l| *l != handle);
        if !leg.answered {
            self.leg_failed(leg.owner, leg.purpose);
        } else if matches!(leg.purpose, LegPurpose::Agent(_)) {
            // The agent hung up (or the desk released the caller): the IVR surveys the
            // caller, or ends the call (its HangUp action). A desktop's transfer keeps the
            // caller for the next agent or the target instead.
            if !call.hung_up && !leg.handed_on {
                let now = Instant::now();
                self.work
                    .push_back(Work::Ivr(leg.owner, ivr::Event::AgentLeft { now }));
            }
        } else if !call.hung_up {
            // The transfer target hung up: the caller's call is over too.
            call.hung_up = true;
            self.sip_command(Command::Hangup { call: leg.owner }).await;
        }
    }

    /// The desk's `TransferToSurvey`: hangs up the agent's leg of the call `call_id`, whose
    /// end then starts the caller's survey (see `end_leg`).
    pub(super) async fn release_to_survey(
        &mut self,
        call_id: &str,
        agent: &str,
    ) -> Result<(), TransferToSurveyError> {
        let Some((&owner, call)) = self.registry.calls.iter().find(|(_, c)| c.id == call_id) else {
            return Err(TransferToSurveyError::UnknownCall(call_id.to_owned()));
        };
        let not_with_agent = || TransferToSurveyError::NotWithAgent {
            call: call_id.to_owned(),
            agent: agent.to_owned(),
        };
        if call.engine.agent() != Some(agent) {
            return Err(not_with_agent());
        }
        if !call.engine.survey_available() {
            return Err(TransferToSurveyError::NoSurvey(call_id.to_owned()));
        }
        let leg = self.registry.legs.iter().find_map(|(&handle, leg)| {
            (leg.owner == owner
                && leg.answered
                && matches!(&leg.purpose, LegPurpose::Agent(a) if a == agent))
            .then_some(handle)
        });
        let leg = leg.ok_or_else(not_with_agent)?;
        tracing::info!(call = %call.id, agent, "agent hands the caller to the survey");
        self.sip_command(Command::Hangup { call: leg }).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_is_the_uri_ip_literal_with_port_5060_by_default() {
        let addr = |text: &str| Some(Peer::Udp(text.parse().unwrap()));
        assert_eq!(peer_of("sip:1001@127.0.0.1:5070"), addr("127.0.0.1:5070"));
        assert_eq!(peer_of("sip:oncall@127.0.0.1"), addr("127.0.0.1:5060"));
        assert_eq!(peer_of("sip:8001@[::1]:5062"), addr("[::1]:5062"));
        // No DNS: a host name cannot be called.
        assert_eq!(peer_of("sip:1001@pbx.example"), None);
        assert_eq!(peer_of("not a uri"), None);
    }
}
