//! The call flow: a caller's call from the INVITE to the hang-up — ringing while the caller
//! look-up runs, answering, media, feeding the IVR engine and carrying out what it asks
//! (prompts and recording to media, queueing to the ACD, ticket updates to the journal), and
//! carrying out the ACD's verdicts (ring an agent, tell a call's IVR).
//!
//! Every consequence that feeds a core again (an IVR event, an ACD event) is queued as
//! [`Work`], so a step never re-enters the flow.
//!
//! Owns the order of a call's steps; must not make the cores' decisions.

use super::{Dispatcher, Work};
use crate::acd::{AcdAction, AcdEvent};
use crate::call::acd_link;
use crate::call::journal::{self, Stage};
use crate::call::lookup::Lookup;
use crate::call::pops::PopRequest;
use crate::call::registry::{Call, Leg, LegPurpose, Playlist};
use crate::call::survey::SurveyRated;
use crate::call::timers::{CallTimer, TimerKey};
use crate::ivr::{self, CallEngine, CallInfo};
use crate::logging::Masked;
use crate::media::recorder::recording_path;
use crate::media::session::{MediaCommand, MediaEvent, SessionOptions};
use crate::sip::sdp::NegotiatedMedia;
use crate::sip::{CallHandle, Command, EndReason, Event as SipEvent};
use crate::store::{CallEntry, Disposition};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

impl Dispatcher {
    pub(super) async fn on_sip(&mut self, event: SipEvent) {
        match event {
            SipEvent::IncomingCall {
                call,
                caller,
                dialled,
                source,
                offer: _,
                priority,
            } => {
                self.on_incoming(call, caller, dialled, source, priority)
                    .await
            }
            SipEvent::CallConfirmed { call, media } => self.on_confirmed(call, &media).await,
            SipEvent::MediaUpdated { call, media } => {
                if let Some(link) = self.registry.media_of(call) {
                    link.send(MediaCommand::SetRemote(media.remote_rtp));
                    link.send(MediaCommand::Hold(media.on_hold()));
                }
            }
            SipEvent::Dtmf { call, digit, .. } => self.on_digit(call, digit),
            SipEvent::OutgoingProgress { call, code } => {
                if let Some(leg) = self.registry.legs.get(&call) {
                    tracing::debug!(leg = call.0, code, purpose = ?leg.purpose, "outgoing call progress");
                }
            }
            SipEvent::OutgoingAnswered { call, media } => self.on_leg_answered(call, &media).await,
            SipEvent::CallEnded { call, reason } => {
                if self.registry.calls.contains_key(&call) {
                    self.on_call_ended(call, reason);
                } else if self.registry.legs.contains_key(&call) {
                    self.end_leg(call, &reason).await;
                }
            }
        }
    }

    async fn on_incoming(
        &mut self,
        handle: CallHandle,
        caller: Option<String>,
        dialled: Option<String>,
        source: SocketAddr,
        priority: bool,
    ) {
        let caller = caller.unwrap_or_default();
        let dialled = dialled.unwrap_or_default();
        let id = uuid::Uuid::new_v4().to_string();
        if self.shutdown.is_some() {
            self.sip_command(Command::Reject {
                call: handle,
                code: 503,
            })
            .await;
            return;
        }
        let lease = match self.pool.lease() {
            Ok(lease) => lease,
            Err(error) => {
                tracing::error!(call = %id, caller = %Masked(&caller), %error, "no RTP ports free: call refused with 503");
                self.sip_command(Command::Reject {
                    call: handle,
                    code: 503,
                })
                .await;
                return;
            }
        };
        tracing::info!(
            call = %id,
            caller = %Masked(&caller),
            dialled = %Masked(&dialled),
            %source,
            priority,
            "incoming call"
        );
        let config = self.config.borrow().clone();
        self.journal.record(
            &id,
            CallEntry::Arrived {
                caller: caller.clone(),
                called: dialled.clone(),
                at: chrono::Utc::now(),
            },
        );
        self.lookups.spawn(handle, &caller, &dialled, &config);
        self.registry.calls.insert(
            handle,
            Call {
                id,
                caller,
                dialled,
                sip_host: source.ip(),
                engine: CallEngine::new(self.ivr.clone()),
                config,
                lease: Some(lease),
                media: None,
                lookup: None,
                started: false,
                early_digits: Vec::new(),
                playlists: VecDeque::new(),
                legs: Vec::new(),
                stage: Stage::Ivr,
                hung_up: false,
                leak: priority,
                ended_by: None,
            },
        );
        // Answered once the look-up is in (at most its timeout): the greeting then starts
        // with everything the flow needs, and a database outage costs at most that delay.
        self.sip_command(Command::Ring { call: handle }).await;
    }

    async fn on_confirmed(&mut self, handle: CallHandle, media: &NegotiatedMedia) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        let Some(lease) = call.lease.take() else {
            return;
        };
        let options = SessionOptions::from_config(&call.config.media).with_sip_host(call.sip_host);
        let id = call.id.clone();
        match self.start_media(lease, media, Leg::Caller(handle), options) {
            Ok(link) => {
                if media.on_hold() {
                    link.send(MediaCommand::Hold(true));
                }
                if let Some(call) = self.registry.calls.get_mut(&handle) {
                    call.media = Some(link);
                }
                self.journal.record(
                    &id,
                    CallEntry::Answered {
                        at: chrono::Utc::now(),
                    },
                );
                self.start_duration_limit(handle, Instant::now());
                self.maybe_start_ivr(handle);
            }
            Err(error) => {
                tracing::error!(call = %id, %error, "media failed to start: hanging up");
                self.sip_command(Command::Hangup { call: handle }).await;
            }
        }
    }

    pub(super) async fn on_lookup(&mut self, handle: CallHandle, lookup: Lookup) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            // Cancelled while we looked.
            return;
        };
        call.lookup = Some(lookup);
        let Some(local_rtp) = call.lease.as_ref().map(|lease| lease.rtp_addr()) else {
            return;
        };
        tracing::debug!(call = %call.id, "answering");
        self.sip_command(Command::Answer {
            call: handle,
            local_rtp,
        })
        .await;
    }

    /// Media running and the look-up answered: the IVR starts, then hears the keys pressed
    /// before.
    fn maybe_start_ivr(&mut self, handle: CallHandle) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        let (Some(lookup), Some(_)) = (&call.lookup, &call.media) else {
            return;
        };
        if call.started {
            return;
        }
        call.started = true;
        let tz = call.config.daemon.tz().unwrap_or(chrono_tz::Asia::Shanghai);
        let info = CallInfo {
            call_id: call.id.clone(),
            did: call.dialled.clone(),
            caller: call.caller.clone(),
            local_time: chrono::Utc::now().with_timezone(&tz),
            has_open_ticket: lookup.has_open_ticket,
            announcements: lookup.announcements.clone(),
            special_group: (lookup.customer.as_ref())
                .and_then(|c| c.special_group)
                .map(|g| g.code().to_owned()),
        };
        let early = std::mem::take(&mut call.early_digits);
        let now = Instant::now();
        self.work
            .push_back(Work::Ivr(handle, ivr::Event::Answered { info, now }));
        for digit in early {
            self.on_digit(handle, digit);
        }
    }

    fn on_digit(&mut self, handle: CallHandle, digit: char) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        // Never the digit itself: keyed entries are account numbers, and every digit alone
        // would spell them out in the log.
        tracing::debug!(call = %call.id, "digit received");
        if !call.started {
            call.early_digits.push(digit);
            return;
        }
        let now = Instant::now();
        self.work
            .push_back(Work::Ivr(handle, ivr::Event::Digit { digit, now }));
    }

    pub(super) async fn on_media(&mut self, leg: Leg, event: Option<MediaEvent>) {
        let Some(event) = event else {
            return self.on_media_ended(leg).await;
        };
        let handle = match leg {
            Leg::Caller(handle) => handle,
            Leg::Outgoing(leg) => {
                if let MediaEvent::CommandFailed(why) = event {
                    tracing::warn!(leg = leg.0, why, "agent-leg media command failed");
                }
                return;
            }
        };
        match event {
            MediaEvent::Digit(digit) => self.on_digit(handle, digit.digit),
            MediaEvent::PromptFinished(name) => self.on_prompt_finished(handle, &name),
            MediaEvent::RecordingStarted(path) => {
                if let Some(call) = self.registry.calls.get(&handle) {
                    tracing::info!(call = %call.id, file = %path.display(), "recording");
                    self.journal.record(
                        &call.id,
                        CallEntry::Recording {
                            path: path.display().to_string(),
                        },
                    );
                }
            }
            MediaEvent::RecordingFinished(path) => {
                tracing::info!(file = %path.display(), "recording complete");
            }
            MediaEvent::CommandFailed(why) => {
                let id = self.registry.calls.get(&handle).map(|c| c.id.clone());
                tracing::warn!(call = ?id, why, "media command failed");
            }
            MediaEvent::Inactive(silence) => self.on_media_inactive(handle, silence).await,
            MediaEvent::RemoteAddressLearned(_) | MediaEvent::Stats(_) => {}
        }
    }

    /// A session ended. Expected once its leg is gone; while the leg is up it means the
    /// media failed, and a call without audio is hung up (the caller can call again).
    async fn on_media_ended(&mut self, leg: Leg) {
        let (handle, id) = match leg {
            Leg::Caller(handle) => match self.registry.calls.get(&handle) {
                Some(call) if !call.hung_up => (handle, call.id.clone()),
                _ => return,
            },
            Leg::Outgoing(handle) => match self.registry.legs.get(&handle) {
                Some(_) => (handle, format!("leg {}", handle.0)),
                None => return,
            },
        };
        tracing::error!(call = %id, "media session ended on its own: hanging up");
        if let Some(call) = self.registry.calls.get_mut(&handle) {
            call.hung_up = true;
        }
        self.sip_command(Command::Hangup { call: handle }).await;
    }

    /// Media reports each prompt by name; the IVR waits for its whole list by id.
    fn on_prompt_finished(&mut self, handle: CallHandle, name: &str) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        let Some(front) = call.playlists.front_mut() else {
            return;
        };
        // A finish of a prompt from a list that was stopped meanwhile does not match.
        if front.remaining.front().map(String::as_str) != Some(name) {
            return;
        }
        front.remaining.pop_front();
        if !front.remaining.is_empty() {
            return;
        }
        let id = front.id;
        call.playlists.pop_front();
        let now = Instant::now();
        self.work
            .push_back(Work::Ivr(handle, ivr::Event::PromptFinished { id, now }));
    }

    /// One step of a call's IVR: the engine takes the event; its queue actions go to the
    /// ACD, its other actions are carried out, and the ACD's verdicts are carried out (those
    /// for IVRs are queued).
    pub(super) async fn feed_ivr(&mut self, handle: CallHandle, event: ivr::Event) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        let now = Instant::now();
        let actions = call.engine.handle(event);
        let acd_actions = acd_link::apply_ivr_actions(&mut self.acd, &handle, &actions, now);
        for action in actions {
            self.ivr_action(handle, action).await;
        }
        self.carry_out_acd(acd_actions).await;
    }

    async fn ivr_action(&mut self, handle: CallHandle, action: ivr::Action) {
        let Some(call) = self.registry.calls.get_mut(&handle) else {
            return;
        };
        match action {
            ivr::Action::Play { .. }
            | ivr::Action::StopPlayback
            | ivr::Action::StartRecording
            | ivr::Action::StopRecording => media_action(call, action),
            ivr::Action::SetTimer { id, at } => self
                .timers
                .set(TimerKey::Call(handle, CallTimer::Ivr(id)), at),
            ivr::Action::CancelTimer { id } => self
                .timers
                .cancel(TimerKey::Call(handle, CallTimer::Ivr(id))),
            ivr::Action::PriorityCall => {
                // Admission is the SIP layer's (priority_numbers, reserved_for_leaks) and
                // happened at the INVITE: an answered call is never cut by the limit.
                tracing::warn!(call = %call.id, caller = %Masked(&call.caller), "gas leak reported: emergency queue");
                call.leak = true;
                let at = chrono::Utc::now();
                self.journal.record(&call.id, CallEntry::Leak { at });
            }
            ivr::Action::Enqueue {
                queue,
                priority,
                leak,
                ..
            } => {
                call.stage = Stage::Queued;
                self.desk.queued(&call.id, &queue, priority, leak);
                let at = chrono::Utc::now();
                self.journal
                    .record(&call.id, CallEntry::Queue { queue, at });
                self.queue_wait_limit(handle, true, Instant::now());
            }
            ivr::Action::Dequeue => self.queue_wait_limit(handle, false, Instant::now()),
            ivr::Action::Bridge { agent } => {
                call.stage = Stage::WithAgent;
                tracing::info!(call = %call.id, agent, "agent answered: connected");
                let at = chrono::Utc::now();
                self.journal.record(
                    &call.id,
                    CallEntry::Agent {
                        agent_id: agent,
                        at,
                    },
                );
                self.queue_wait_limit(handle, false, Instant::now());
            }
            ivr::Action::Transfer { uri } => {
                self.start_leg(handle, LegPurpose::Transfer, &uri).await;
            }
            ivr::Action::HangUp => {
                if !matches!(call.stage, Stage::WithAgent | Stage::Transferred) {
                    call.stage = Stage::SelfServed;
                }
                call.hung_up = true;
                self.sip_command(Command::Hangup { call: handle }).await;
            }
            ivr::Action::Ticket(update) => {
                if let ivr::TicketUpdate::Variable { name, .. } = &update {
                    // The value (an account number) goes on the ticket for the agent, never
                    // into logs.
                    tracing::debug!(call = %call.id, variable = name, "caller entry collected");
                }
                let customer = call.lookup.as_ref().and_then(|l| l.customer.as_ref());
                self.journal
                    .record(&call.id, journal::ticket_entry(update, customer));
            }
            ivr::Action::NodeEntered { node } => crate::ops::metrics::global().node_entered(&node),
            ivr::Action::RecordConsent(record) => {
                self.journal
                    .record(&call.id, journal::consent_entry(record));
            }
            ivr::Action::SurveyResult(answer) => {
                tracing::info!(call = %call.id, rating = answer.rating.code(), "survey answered");
                self.journal.record(&call.id, journal::survey_entry(answer));
                let rated = SurveyRated {
                    call_id: call.id.clone(),
                    agent_id: call.engine.agent().map(str::to_owned),
                    rating: answer.rating,
                    key: answer.key,
                    at: answer.at.with_timezone(&chrono::Utc),
                };
                // The agent's desktop and the wallboard get it too.
                self.desk
                    .survey_result(&rated.call_id, rated.rating_number());
                self.survey_results.publish(rated);
            }
        }
    }

    /// Carries out the ACD's actions; a verdict for a call's IVR is queued for it.
    pub(super) async fn carry_out_acd(&mut self, actions: Vec<AcdAction<CallHandle>>) {
        let now = Instant::now();
        // An agent set offline in this batch rang out: the desk counts a miss for them.
        let rang_out: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::AgentSetOffline { agent } => Some(agent.clone()),
                _ => None,
            })
            .collect();
        for action in actions {
            if let Some((&call, result)) = acd_link::queue_result(&action) {
                self.work
                    .push_back(Work::Ivr(call, ivr::Event::Queue { result, now }));
            }
            match action {
                AcdAction::OfferToAgent { call, agent, uri } => {
                    // The pop first; the phone rings once it is with the desk.
                    if let Some(c) = self.registry.calls.get(&call) {
                        self.desk.offer(PopRequest {
                            handle: call,
                            call_id: c.id.clone(),
                            caller: c.caller.clone(),
                            dialled: c.dialled.clone(),
                            agent,
                            uri,
                        });
                    }
                }
                AcdAction::CancelOffer { call, agent } => {
                    let id = self.registry.calls.get(&call).map(|c| c.id.clone());
                    let ringing = match id {
                        Some(id) if !rang_out.contains(&agent) => {
                            self.desk.offer_cancelled(call, &id, &agent)
                        }
                        _ => true,
                    };
                    if ringing && let Some(leg) = self.registry.ringing_agent_leg(call, &agent) {
                        self.sip_command(Command::Hangup { call: leg }).await;
                    }
                }
                AcdAction::AgentSetOffline { agent } => {
                    tracing::warn!(agent, "agent did not answer: the desk decides what next");
                    self.desk.rang_out(&agent);
                }
                AcdAction::StartTimer { id, at } => self.timers.set(TimerKey::Acd(id), at),
                AcdAction::CancelTimer { id } => self.timers.cancel(TimerKey::Acd(id)),
                AcdAction::Overflow { call, .. } => {
                    if let Some(c) = self.registry.calls.get(&call) {
                        self.desk.left_queue(&c.id);
                    }
                }
                AcdAction::Waiting { .. } | AcdAction::Position { .. } => {}
            }
        }
    }

    /// The caller's call is over, however it ended: its IVR hears so first, then the call is
    /// forgotten.
    fn on_call_ended(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(call) = self.registry.calls.get(&handle)
            && call.started
            && !call.engine.is_ended()
        {
            let now = Instant::now();
            self.work
                .push_back(Work::Ivr(handle, ivr::Event::CallerHungUp { now }));
        }
        self.work.push_back(Work::Forget(handle, reason));
    }

    /// ACD told, timers cancelled, legs hung up, media closed, ports freed, the call row
    /// completed.
    pub(super) async fn forget_call(&mut self, handle: CallHandle, reason: &EndReason) {
        let Some(call) = self.registry.calls.remove(&handle) else {
            return;
        };
        self.desk.caller_gone(handle, &call.id);
        // The ACD forgets the call (a no-op when it was not waiting) before anything else
        // can be offered to it.
        let actions = self.acd.handle(AcdEvent::CallerAbandoned {
            call: handle,
            now: Instant::now(),
        });
        self.carry_out_acd(actions).await;
        self.timers.cancel_call(handle);
        for leg in &call.legs {
            self.sip_command(Command::Hangup { call: *leg }).await;
        }
        let disposition = match (call.ended_by, call.started, reason) {
            (Some(ended_by), _, _) => ended_by,
            // The SIP layer hung up by itself (RFC 4028 session timers).
            (None, _, EndReason::SessionExpired) => Disposition::SessionExpired,
            (None, _, EndReason::RefreshFailed(_)) => Disposition::SessionRefreshFailed,
            (None, true, _) => call.stage.disposition(),
            // Hung up while it rang.
            (None, false, EndReason::Cancelled | EndReason::RemoteHangup) => {
                Stage::Ivr.disposition()
            }
            (None, false, _) => Disposition::Failed,
        };
        tracing::info!(
            call = %call.id,
            caller = %Masked(&call.caller),
            ?reason,
            disposition = disposition.code(),
            "call ended"
        );
        self.journal.record(
            &call.id,
            CallEntry::Ended {
                at: chrono::Utc::now(),
                disposition,
            },
        );
        // `call` drops here: its media link closes the session, its lease frees the ports.
    }
}

/// Prompts and recording: the IVR's actions for the call's media session.
fn media_action(call: &mut Call, action: ivr::Action) {
    let link = call.media.as_ref();
    match action {
        ivr::Action::Play { id, prompts, .. } => {
            if let Some(link) = link {
                link.send(MediaCommand::Play(prompts.clone()));
            }
            call.playlists.push_back(Playlist {
                id,
                remaining: prompts.into(),
            });
        }
        ivr::Action::StopPlayback => {
            if let Some(link) = link {
                link.send(MediaCommand::StopPlayback);
            }
            call.playlists.clear();
        }
        ivr::Action::StartRecording => {
            let path = recording_path(&call.config.media.recordings_dir, &call.id);
            if let Some(link) = link {
                link.send(MediaCommand::StartRecording(path));
            }
        }
        ivr::Action::StopRecording => {
            if let Some(link) = link {
                link.send(MediaCommand::StopRecording);
            }
        }
        _ => {}
    }
}
