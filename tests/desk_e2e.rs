//! Agent desktops end to end: the call stack started in-process on loopback with a fresh
//! PostgreSQL database, called by the test telephone of `support/phone.rs`, agents' phones
//! answering as `AgentPhone`s, and desktops on `hotline.v1.AgentDesk` over a real tonic
//! client (`support/desk_rig.rs`): the pop before the answer, ring-out to the next agent,
//! pending NOT_READY after wrap-up, wrap-up expiry, transfer to a queue with notes, to
//! another agent (through the desk, refused when they are not READY) and to a URI (the wait
//! prompt while it rings, back to the queue when it refuses), a transferred call waiting as
//! any call (the queue-wait limit, an abandon counted on the target's lane), the call's
//! ticket changes, wallboard counters, and resync after a restart.

#[path = "support/audio.rs"]
#[allow(dead_code)] // The WAV writers and tone makers are for other binaries.
mod audio;
#[path = "support/desk_rig.rs"]
mod desk_rig;
#[path = "support/phone.rs"]
#[allow(dead_code)] // The phones' audio helpers are for other binaries.
mod phone;
#[allow(dead_code)] // Shared test helpers: this binary uses the database and token part.
mod support;

use chrono::{TimeDelta, Utc};
use desk_rig::{CALLER, Desk, Events, HOTLINE, after_greeting, next_event, unix_ms};
use hotline::api::pb;
use hotline::media::g711::G711Codec;
use hotline::sip::message::Message;
use hotline::store::{CallEntry, NewCustomer, Store};
use hotline::tickets::{Category, Status};
use pb::agent_event::Event;
use phone::{AgentPhone, Phone, Ringing};
use std::path::Path;
use std::time::Duration;
use support::{ADMIN, authed};
use tonic::Code;

/// The caller's household, 3 earlier calls and 2 open tickets (plus a closed one).
async fn seed_caller(store: &Store) {
    let household = store
        .create_customer(&NewCustomer {
            account_number: "8800123".into(),
            name: "王秀英".into(),
            phone_numbers: vec![CALLER.into()],
            address: "幸福路1号".into(),
            area: "天河".into(),
            special_group: None,
        })
        .await
        .unwrap();
    let calls = (1..=3)
        .map(|i| {
            let id: &'static str = ["e1", "e2", "e3"][i - 1];
            (
                id,
                vec![CallEntry::Arrived {
                    caller: CALLER.into(),
                    called: HOTLINE.into(),
                    at: Utc::now() - TimeDelta::days(i as i64),
                }],
            )
        })
        .collect();
    support::journal_calls(store, calls).await;
    for (caller, customer) in [(CALLER, None), ("02588880000", Some(household.id))] {
        store
            .create_ticket(&support::new_ticket(
                caller,
                customer,
                Status::Dispatched,
                Category::Repair,
            ))
            .await
            .unwrap();
    }
    store
        .create_ticket(&support::new_ticket(
            CALLER,
            None,
            Status::Closed,
            Category::Query,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_pop_reaches_the_desktop_before_the_agent_answers() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(&[("1001", &uri, "general")], "ring_timeout_secs = 15", "").await;
    seed_caller(&desk.store).await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    let mut events = desk.events("1001").await;
    let mut phone = desk.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(after_greeting()).await;
    phone.press_inband('2').await;
    let ringing = agent.ringing(10).await;
    let invite_at = Utc::now().timestamp_millis();
    let (event, offered) = events.offered().await;
    assert!(
        unix_ms(event.at.as_ref().unwrap()) <= invite_at,
        "Offered at {:?}, INVITE received at {invite_at}",
        event.at
    );
    let pop = offered.screen_pop.expect("pop");
    assert_eq!(pop.caller_number, CALLER);
    assert_eq!(pop.dialled_number, HOTLINE);
    assert_eq!(pop.queue, "general");
    assert_eq!(
        pop.household.as_ref().map(|h| h.name.as_str()),
        Some("王秀英")
    );
    let earlier: Vec<&str> = pop.last_calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(earlier, ["e1", "e2", "e3"]);
    assert_eq!(pop.open_tickets.len(), 2, "{:?}", pop.open_tickets);
    assert!(!pop.draft_ticket.is_empty(), "the call's draft is named");
    assert!(
        pop.ivr_path
            .iter()
            .any(|s| s.node == "menu" && s.key == "2"),
        "{:?}",
        pop.ivr_path
    );
    agent.answer(&ringing).await;
    events.state(pb::DeskState::OnCall).await;
    events
        .until(|e| matches!(e.event, Some(Event::Connected(_))).then_some(()))
        .await;
    assert_eq!(phone.bye().await, 200);
    assert_eq!(agent.expect_end(5).await, "BYE");
    events
        .until(|e| matches!(e.event, Some(Event::Ended(_))).then_some(()))
        .await;
    events.state(pb::DeskState::WrapUp).await;
}

/// The offer rang out: `OfferWithdrawn(ring_timeout)`, then NOT_READY(ring_no_answer).
async fn rang_out(events: &mut Events) {
    let withdrawn = events
        .until(|e| match &e.event {
            Some(Event::OfferWithdrawn(w)) => Some(w.reason()),
            _ => None,
        })
        .await;
    assert_eq!(withdrawn, pb::WithdrawReason::RingTimeout);
    let not_ready = events.state(pb::DeskState::NotReady).await;
    assert_eq!(not_ready.reason_code, "ring_no_answer");
}

#[tokio::test]
async fn an_offer_that_rings_out_goes_to_the_next_agent() {
    let first = AgentPhone::bind().await;
    let second = AgentPhone::bind().await;
    let (uri1, uri2) = (first.uri("1001"), second.uri("1002"));
    let mut desk = Desk::start(
        &[("1001", &uri1, "general"), ("1002", &uri2, "general")],
        "ring_timeout_secs = 1",
        "",
    )
    .await;
    // 1001 is ready first: idle longest, rung first.
    desk.set("1001", pb::DeskState::Ready, "").await;
    desk.set("1002", pb::DeskState::Ready, "").await;
    let mut events1 = desk.events("1001").await;
    let mut events2 = desk.events("1002").await;
    let mut phone = desk.phone().await;
    assert_eq!(phone.call().await, 200);
    tokio::time::sleep(after_greeting()).await;
    phone.press_inband('2').await;
    let _ignored = first.ringing(10).await;
    events1.offered().await;
    rang_out(&mut events1).await;
    let ringing = second.ringing(10).await;
    let (_, offered) = events2.offered().await;
    assert_eq!(offered.screen_pop.unwrap().caller_number, CALLER);
    second.answer(&ringing).await;
    events2.state(pb::DeskState::OnCall).await;
    assert_eq!(phone.bye().await, 200);
}

#[tokio::test]
async fn not_ready_asked_during_a_call_applies_after_wrap_up_and_wrap_up_expires() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(
        &[("1001", &uri, "general")],
        "ring_timeout_secs = 15",
        "[desk]\nwrap_up_secs = 1\n",
    )
    .await;
    let ready = desk.set("1001", pb::DeskState::Ready, "").await;
    let mut events = desk.events("1001").await;
    for round in 0..2 {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        let ringing = agent.ringing(10).await;
        agent.answer(&ringing).await;
        events.state(pb::DeskState::OnCall).await;
        if round == 0 {
            // A stale version is refused; the current one makes NOT_READY pending.
            let stale = desk
                .client
                .set_state(authed(
                    ADMIN,
                    pb::SetStateRequest {
                        agent_id: "1001".into(),
                        state: pb::DeskState::NotReady.into(),
                        reason_code: "break".into(),
                        expected_version: Some(ready.version),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(stale.code(), Code::Aborted);
            let pending = desk.set("1001", pb::DeskState::NotReady, "break").await;
            assert_eq!(pending.state(), pb::DeskState::OnCall);
            assert_eq!(pending.pending_state(), pb::DeskState::NotReady);
        }
        assert_eq!(phone.bye().await, 200);
        assert_eq!(agent.expect_end(5).await, "BYE");
        events.state(pb::DeskState::WrapUp).await;
        let after = events
            .until(|e| match &e.event {
                Some(Event::StateChanged(s)) if s.from == pb::DeskState::WrapUp as i32 => {
                    Some(s.clone())
                }
                _ => None,
            })
            .await;
        if round == 0 {
            assert_eq!(
                (after.to(), after.reason_code.as_str()),
                (pb::DeskState::NotReady, "break")
            );
            desk.set("1001", pb::DeskState::Ready, "").await;
        } else {
            assert_eq!(
                after.to(),
                pb::DeskState::Ready,
                "wrap-up expired into READY"
            );
        }
    }
}

/// Agent 1001's desktop asks to transfer `call` (blind) with `notes`.
async fn try_transfer(
    desk: &mut Desk,
    call: &str,
    to: pb::transfer_call_request::To,
    notes: &str,
) -> Result<(), tonic::Status> {
    desk.client
        .transfer_call(authed(
            ADMIN,
            pb::TransferCallRequest {
                agent_id: "1001".into(),
                call_id: call.into(),
                to: Some(to),
                notes: notes.into(),
            },
        ))
        .await
        .map(|_| ())
}

/// Agent 1001's desktop transfers `call` (blind) with `notes`.
async fn transfer(desk: &mut Desk, call: &str, to: pb::transfer_call_request::To, notes: &str) {
    try_transfer(desk, call, to, notes).await.unwrap();
}

/// Agents 1001 (general) and 1002 (`queue2`) READY with their desktops subscribed, `acd`
/// and `extra` as for [`Desk::start`].
async fn two_agents(
    queue2: &str,
    acd: &str,
    extra: &str,
) -> (Desk, [AgentPhone; 2], Events, Events) {
    let first = AgentPhone::bind().await;
    let second = AgentPhone::bind().await;
    let (uri1, uri2) = (first.uri("1001"), second.uri("1002"));
    let agents = [("1001", uri1.as_str(), "general"), ("1002", &uri2, queue2)];
    let mut desk = Desk::start(&agents, acd, extra).await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    desk.set("1002", pb::DeskState::Ready, "").await;
    let events1 = desk.events("1001").await;
    let events2 = desk.events("1002").await;
    (desk, [first, second], events1, events2)
}

/// `agent`'s state changes in `agent_state_changes`, in order: (from, to).
async fn timeline(desk: &Desk, agent: &str) -> Vec<(String, String)> {
    desk.stack.journal().flush().await;
    sqlx::query_as(
        "SELECT from_state, to_state FROM agent_state_changes WHERE agent_id = $1 \
         ORDER BY epoch, version",
    )
    .bind(agent)
    .fetch_all(&mut desk.connect().await)
    .await
    .unwrap()
}

/// The call row's disposition, agent and whether it ended, once the journal wrote it.
async fn call_row(desk: &Desk, call: &str) -> (Option<String>, Option<String>, bool) {
    desk.stack.journal().flush().await;
    sqlx::query_as(
        "SELECT disposition, agent_id, ended_at IS NOT NULL FROM calls WHERE call_id = $1",
    )
    .bind(call)
    .fetch_one(&mut desk.connect().await)
    .await
    .unwrap()
}

fn pairs(timeline: &[(String, String)]) -> Vec<(&str, &str)> {
    timeline
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect()
}

/// Waits (10 s at most) until the caller has heard the whole of `prompt` in the audio that
/// reached their phone from its `from`th packet on; returns where and how well.
async fn caller_hears(phone: &Phone, prompt: &str, from: usize) -> audio::Heard {
    let wanted = audio::read_wav(Path::new(&format!("sounds/zh-CN/{prompt}.wav")));
    let whole_seconds = Duration::from_secs((wanted.len() / audio::RATE) as u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut pcm = Vec::new();
        for packet in phone.rtp.received.lock().unwrap().iter().skip(from) {
            if let Some(codec) = G711Codec::from_payload_type(packet.payload_type) {
                codec.decode_into(&packet.payload, &mut pcm);
            }
        }
        // The detector needs at least the prompt's length to compare with.
        let heard = (pcm.len() >= wanted.len()).then(|| audio::find_prompt(&pcm, &wanted));
        if let Some(heard) = heard
            && heard.score > 0.95
            && heard.matched >= whole_seconds
        {
            return heard;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caller did not hear {prompt} within 10 s: {heard:?}"
        );
        // More packets arrive every 20 ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_transfer_to_another_queue_carries_the_notes_to_the_next_agent() {
    let (mut desk, [first, second], mut events1, mut events2) =
        two_agents("emergency", "ring_timeout_secs = 15", "").await;
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let before_transfer = phone.rtp.received.lock().unwrap().len();
    let to = pb::transfer_call_request::To::Queue("emergency".into());
    transfer(&mut desk, &offered.call_id, to, "smells gas in the kitchen").await;
    assert_eq!(first.expect_end(5).await, "BYE");
    let ringing = second.ringing(10).await;
    // While 1002's phone rings the caller hears the queue's wait prompt, not silence.
    let heard = caller_hears(&phone, "queue_wait", before_transfer).await;
    assert!(heard.offset < Duration::from_secs(2), "{heard:?}");
    let (_, handed) = events2.offered().await;
    assert_eq!(handed.call_id, offered.call_id);
    assert_eq!(handed.handover.len(), 1);
    assert_eq!(handed.handover[0].notes, "smells gas in the kitchen");
    assert_eq!(handed.handover[0].from_agent, "1001");
    second.answer(&ringing).await;
    events2.state(pb::DeskState::OnCall).await;
    events1.state(pb::DeskState::WrapUp).await;
    assert_eq!(phone.bye().await, 200);
}

#[tokio::test]
async fn a_blind_transfer_to_a_ready_agent_offers_the_call_through_their_desk() {
    // 1002 serves another queue: a transfer names the agent, whatever their queues.
    let (mut desk, [first, second], mut events1, mut events2) =
        two_agents("emergency", "ring_timeout_secs = 15", "").await;
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let before_transfer = phone.rtp.received.lock().unwrap().len();
    let to = pb::transfer_call_request::To::Agent("1002".into());
    transfer(
        &mut desk,
        &offered.call_id,
        to,
        "disputes the meter reading",
    )
    .await;
    assert_eq!(first.expect_end(5).await, "BYE");
    let ringing = second.ringing(10).await;
    let invite_at = Utc::now().timestamp_millis();
    // 1002 goes RINGING and gets the pop with 1001's notes, before their phone answers.
    let rung = next_event(&mut events2.stream).await;
    assert!(
        matches!(&rung.event, Some(Event::StateChanged(s)) if s.to() == pb::DeskState::Ringing),
        "{rung:?}"
    );
    let (event, handed) = events2.offered().await;
    assert!(
        unix_ms(event.at.as_ref().unwrap()) <= invite_at,
        "Offered at {:?}, INVITE received at {invite_at}",
        event.at
    );
    assert_eq!(handed.call_id, offered.call_id);
    let pop = handed.screen_pop.expect("pop");
    assert_eq!(
        (pop.caller_number.as_str(), pop.queue.as_str()),
        (CALLER, "general")
    );
    assert_eq!(handed.handover.len(), 1, "{:?}", handed.handover);
    assert_eq!(handed.handover[0].from_agent, "1001");
    assert_eq!(handed.handover[0].notes, "disputes the meter reading");
    // The caller waits for 1002 with the wait prompt of the call's queue.
    caller_hears(&phone, "queue_wait", before_transfer).await;
    second.answer(&ringing).await;
    events2.state(pb::DeskState::OnCall).await;
    events2
        .until(|e| matches!(e.event, Some(Event::Connected(_))).then_some(()))
        .await;
    // 1001's call ended by the transfer (answered: no OfferWithdrawn), then wrap-up.
    let ended = events1
        .until(|e| match &e.event {
            Some(Event::OfferWithdrawn(w)) => panic!("withdrawn after the answer: {w:?}"),
            Some(Event::Ended(ended)) => Some(ended.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ended.who_hung_up(), pb::HungUpBy::Transfer);
    events1.state(pb::DeskState::WrapUp).await;
    // The caller talks with 1002 until hanging up; 1002 wraps up.
    assert_eq!(phone.bye().await, 200);
    assert_eq!(second.expect_end(5).await, "BYE");
    events2.state(pb::DeskState::WrapUp).await;
    desk.wait_idle().await;
    assert_eq!(
        pairs(&timeline(&desk, "1002").await),
        [
            ("logged_out", "ready"),
            ("ready", "ringing"),
            ("ringing", "on_call"),
            ("on_call", "wrap_up")
        ]
    );
    assert_eq!(
        call_row(&desk, &offered.call_id).await,
        (Some("answered".into()), Some("1002".into()), true),
        "the call row ends with the agent it was transferred to"
    );
}

/// 1001's transfer of `call` to `agent`, refused: its code and message.
async fn refusal(desk: &mut Desk, call: &str, agent: &str) -> (Code, String) {
    let to = pb::transfer_call_request::To::Agent(agent.into());
    let status = try_transfer(desk, call, to, "notes").await.unwrap_err();
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn a_blind_transfer_to_an_agent_who_is_not_ready_is_refused_and_the_caller_stays() {
    let (mut desk, [first, _second], mut events1, _) =
        two_agents("general", "ring_timeout_secs = 15", "").await;
    desk.set("1002", pb::DeskState::NotReady, "break").await;
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let (code, message) = refusal(&mut desk, &offered.call_id, "1002").await;
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("not_ready(break)"), "{message}");
    let (code, message) = refusal(&mut desk, &offered.call_id, "9999").await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.starts_with("agent"), "{message}");
    // The caller is still with 1001: their hang-up reaches 1001's phone and desktop.
    assert_eq!(phone.bye().await, 200);
    assert_eq!(first.expect_end(5).await, "BYE");
    let ended = events1
        .until(|e| match &e.event {
            Some(Event::Ended(ended)) => Some(ended.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ended.who_hung_up(), pb::HungUpBy::Caller);
    desk.wait_idle().await;
    assert_eq!(
        pairs(&timeline(&desk, "1002").await),
        [("logged_out", "ready"), ("ready", "not_ready")],
        "1002 was never offered the call"
    );
}

/// The call of `offered`, back in general with its priority, rings `agent` again: their
/// phone's INVITE and their desktop's new `Offered`.
async fn offered_again_in_general(
    agent: &AgentPhone,
    events: &mut Events,
    offered: &pb::Offered,
) -> (Ringing, pb::Offered) {
    let again = agent.ringing(10).await;
    let (_, offered_again) = events.offered().await;
    assert_eq!(offered_again.call_id, offered.call_id);
    let pop = offered_again.screen_pop.as_ref().expect("pop");
    let pop_before = offered.screen_pop.as_ref().expect("pop");
    assert_eq!(
        (pop.queue.as_str(), pop.priority),
        ("general", pop_before.priority)
    );
    (again, offered_again)
}

#[tokio::test]
async fn a_transfer_the_agent_lets_ring_out_goes_to_the_calls_queue() {
    // No wrap-up: 1001 is READY again right after the transfer.
    let (mut desk, [first, second], mut events1, mut events2) = two_agents(
        "emergency",
        "ring_timeout_secs = 2",
        "[desk]\nwrap_up_secs = 0\n",
    )
    .await;
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let to = pb::transfer_call_request::To::Agent("1002".into());
    transfer(&mut desk, &offered.call_id, to, "gas bill twice").await;
    assert_eq!(first.expect_end(5).await, "BYE");
    let _ignored = second.ringing(10).await;
    events2.offered().await;
    rang_out(&mut events2).await;
    assert_eq!(
        second.expect_end(5).await,
        "CANCEL",
        "1002's phone stops ringing"
    );
    // The caller waits in the call's queue with its priority: general's agent 1001 gets it,
    // with the pop and the notes.
    let (again, offered_again) = offered_again_in_general(&first, &mut events1, &offered).await;
    assert_eq!(offered_again.handover[0].notes, "gas bill twice");
    first.answer(&again).await;
    events1.state(pb::DeskState::OnCall).await;
    assert_eq!(phone.bye().await, 200);
    assert_eq!(first.expect_end(5).await, "BYE");
    // No `wait_idle`: the test phone never answers the cancelled INVITE with 487, so that
    // client transaction waits for Timer C (181 s), as the SIP layer means it to.
}

#[tokio::test]
async fn a_blind_transfer_to_a_uri_rings_the_target_and_the_row_says_transferred() {
    let (mut desk, agent, mut events) = Desk::one_agent().await;
    let target = AgentPhone::bind().await;
    let (mut phone, _, offered) = desk.answered_call(&agent, &mut events).await;
    let before_transfer = phone.rtp.received.lock().unwrap().len();
    let to = pb::transfer_call_request::To::Uri(target.uri("2200"));
    transfer(&mut desk, &offered.call_id, to, "").await;
    // The agent's phone is released; the target rings with the caller's number.
    assert_eq!(agent.expect_end(5).await, "BYE");
    let transferred = target.ringing(10).await;
    // While it rings the caller hears the wait prompt, as for the IVR's own overflow.
    caller_hears(&phone, "queue_wait", before_transfer).await;
    assert_eq!(transferred.invite.uri(), Some(target.uri("2200").as_str()));
    assert!(
        transferred
            .invite
            .header("From")
            .is_some_and(|f| f.contains(CALLER)),
        "{:?}",
        transferred.invite.header("From")
    );
    // The agent's call ended by the transfer (it was answered: no OfferWithdrawn), then
    // wrap-up.
    let ended = events
        .until(|e| match &e.event {
            Some(Event::OfferWithdrawn(w)) => panic!("withdrawn after the answer: {w:?}"),
            Some(Event::Ended(ended)) => Some(ended.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ended.call_id, offered.call_id);
    assert_eq!(ended.who_hung_up(), pb::HungUpBy::Transfer);
    events.state(pb::DeskState::WrapUp).await;
    // The target talks with the caller; the caller hangs up, the target hears BYE.
    target.answer(&transferred).await;
    assert_eq!(phone.bye().await, 200);
    assert_eq!(target.expect_end(5).await, "BYE");
    desk.wait_idle().await;
    assert_eq!(
        call_row(&desk, &offered.call_id).await,
        (Some("transferred".into()), Some("1001".into()), true),
        "the call row records the transfer"
    );
}

/// `target` refuses the call ringing it: 486 Busy Here.
async fn busy(target: &AgentPhone, ringing: &Ringing) {
    let busy = Message::response_to(&ringing.invite, 486, "Busy Here", Some("agenttag"));
    target
        .sip
        .send_to(&busy.to_bytes(), ringing.from)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_uri_that_refuses_a_transfer_sends_the_call_back_to_its_queue_with_its_priority() {
    let (mut desk, [first, second], mut events1, mut events2) =
        two_agents("general", "ring_timeout_secs = 15", "").await;
    let target = AgentPhone::bind().await;
    // 1001 answers (idle longest); the call is not in the ACD while the URI rings, so 1002
    // is offered nothing until the target refuses.
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let to = pb::transfer_call_request::To::Uri(target.uri("2200"));
    transfer(&mut desk, &offered.call_id, to, "").await;
    assert_eq!(first.expect_end(5).await, "BYE");
    let transferred = target.ringing(10).await;
    busy(&target, &transferred).await;
    // Back in general with its priority: 1002 is offered it.
    let (again, _) = offered_again_in_general(&second, &mut events2, &offered).await;
    second.answer(&again).await;
    events2.state(pb::DeskState::OnCall).await;
    assert_eq!(phone.bye().await, 200);
    assert_eq!(second.expect_end(5).await, "BYE");
    // No `wait_idle`: the refused INVITE's client transaction stays for Timer D (RFC 3261
    // 17.1.1.2), as the SIP layer means it to. The row, once the call is closed:
    let row = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let row = call_row(&desk, &offered.call_id).await;
            if row.2 {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the call row closed");
    assert_eq!(row, (Some("answered".into()), Some("1002".into()), true));
}

/// The wallboard's stream (admin token).
async fn wallboard(desk: &mut Desk) -> tonic::Streaming<pb::WallboardUpdate> {
    desk.client
        .stream_wallboard(authed(ADMIN, pb::StreamWallboardRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// The row of a call 1001 answered and transferred to emergency, where it was lost: ended
/// with `disposition`, naming 1001, in queue emergency.
async fn lost_in_emergency(desk: &Desk, call: &str, disposition: &str) {
    assert_eq!(
        call_row(desk, call).await,
        (Some(disposition.into()), Some("1001".into()), true)
    );
    let queue: Option<String> = sqlx::query_scalar("SELECT queue FROM calls WHERE call_id = $1")
        .bind(call)
        .fetch_one(&mut desk.connect().await)
        .await
        .unwrap();
    assert_eq!(queue.as_deref(), Some("emergency"));
}

#[tokio::test]
async fn a_call_transferred_to_a_queue_with_nobody_ready_ends_at_max_queue_wait_secs() {
    let (mut desk, [first, _second], mut events1, _) = two_agents(
        "emergency",
        "ring_timeout_secs = 15",
        "daemon.max_queue_wait_secs = 2",
    )
    .await;
    desk.set("1002", pb::DeskState::NotReady, "break").await;
    let (phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let to = pb::transfer_call_request::To::Queue("emergency".into());
    transfer(&mut desk, &offered.call_id, to, "").await;
    assert_eq!(first.expect_end(5).await, "BYE");
    // Hung up as any caller waiting past the limit (see call_e2e's
    // a_queue_wait_past_max_queue_wait_secs_is_hung_up).
    phone.expect_bye(15).await;
    desk.wait_idle().await;
    lost_in_emergency(&desk, &offered.call_id, "queue_timeout").await;
}

#[tokio::test]
async fn a_caller_hanging_up_while_waiting_after_a_transfer_is_an_abandon_on_the_target_lane() {
    let (mut desk, [first, _second], mut events1, _) =
        two_agents("emergency", "ring_timeout_secs = 15", "").await;
    desk.set("1002", pb::DeskState::NotReady, "break").await;
    let mut board = wallboard(&mut desk).await;
    let (mut phone, _, offered) = desk.answered_call(&first, &mut events1).await;
    let before_transfer = phone.rtp.received.lock().unwrap().len();
    let to = pb::transfer_call_request::To::Queue("emergency".into());
    transfer(&mut desk, &offered.call_id, to, "").await;
    assert_eq!(first.expect_end(5).await, "BYE");
    caller_hears(&phone, "queue_wait", before_transfer).await;
    assert_eq!(phone.bye().await, 200);
    // The wallboard: answered once on general, then offered and abandoned on emergency.
    let lanes = tokio::time::timeout(Duration::from_secs(10), async {
        // An update may carry only the lanes that changed: keep each lane's latest.
        let mut latest = std::collections::HashMap::new();
        loop {
            let update = board.message().await.unwrap().unwrap();
            for lane in update.lanes {
                latest.insert(lane.lane.clone(), lane);
            }
            if let (Some(general), Some(emergency)) =
                (latest.get("general"), latest.get("emergency"))
                && emergency.abandoned == 1
            {
                return (general.clone(), emergency.clone());
            }
        }
    })
    .await
    .expect("the wallboard counted the abandon on the emergency lane");
    let (general, emergency) = lanes;
    assert_eq!(
        (general.offered, general.answered, general.abandoned),
        (1, 1, 0)
    );
    assert_eq!((emergency.offered, emergency.answered), (1, 0));
    assert_eq!(emergency.waiting, 0);
    desk.wait_idle().await;
    // The desk lists no live call; the row says where and how the call ended, and who
    // answered it first.
    let live = desk
        .client
        .list_live_calls(authed(ADMIN, pb::ListLiveCallsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(live.calls.is_empty(), "{:?}", live.calls);
    lost_in_emergency(&desk, &offered.call_id, "abandoned_in_queue").await;
}

/// The next `TicketChanged` of the stream: (call, ticket name, status).
async fn ticket_changed(events: &mut Events) -> (String, String, String) {
    events
        .until(|e| match &e.event {
            Some(Event::TicketChanged(t)) => {
                Some((t.call_id.clone(), t.name.clone(), t.status.clone()))
            }
            _ => None,
        })
        .await
}

#[tokio::test]
async fn changes_of_the_calls_ticket_reach_the_agents_desktop() {
    let (mut desk, agent, mut events) = Desk::one_agent().await;
    let (mut phone, _, offered) = desk.answered_call(&agent, &mut events).await;
    let draft = offered.screen_pop.expect("pop").draft_ticket;
    assert!(!draft.is_empty(), "the call's draft is named");
    let name = format!("tickets/{draft}");
    let call = offered.call_id.clone();
    // The agent fills the draft in while talking.
    desk.tickets
        .update_ticket(authed(
            ADMIN,
            pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    name: name.clone(),
                    description: "smells gas at the meter".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        ticket_changed(&mut events).await,
        (call.clone(), name.clone(), "draft".into())
    );
    assert_eq!(phone.bye().await, 200);
    assert_eq!(agent.expect_end(5).await, "BYE");
    events.state(pb::DeskState::WrapUp).await;
    // The wrap-up's notes go onto the draft: the desktop hears of it after READY.
    desk.client
        .complete_wrap_up(authed(
            ADMIN,
            pb::CompleteWrapUpRequest {
                agent_id: "1001".into(),
                disposition_code: "resolved".into(),
                notes: "advised to ventilate".into(),
            },
        ))
        .await
        .unwrap();
    events.state(pb::DeskState::Ready).await;
    assert_eq!(
        ticket_changed(&mut events).await,
        (call.clone(), name.clone(), "draft".into())
    );
    // A transition of the ticket after the call: the agent who had it hears the new status.
    let closed = desk
        .tickets
        .close_ticket(authed(
            ADMIN,
            pb::CloseTicketRequest {
                name: name.clone(),
                reason: "explained on the phone".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status(), pb::Status::Closed);
    assert_eq!(
        ticket_changed(&mut events).await,
        (call, name, "closed".into())
    );
}

#[tokio::test]
async fn hang_up_from_the_desktop_surveys_the_caller_and_the_rating_changes_the_ticket() {
    let (mut desk, agent, mut events) = Desk::one_agent().await;
    let (mut phone, _, offered) = desk.answered_call(&agent, &mut events).await;
    let name = format!("tickets/{}", offered.screen_pop.expect("pop").draft_ticket);
    // The agent hangs up first, from the desktop: their phone is released, the caller hears
    // the survey (keys may cut into it).
    desk.client
        .hang_up(authed(
            ADMIN,
            pb::HangUpRequest {
                agent_id: "1001".into(),
                call_id: offered.call_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(agent.expect_end(5).await, "BYE");
    let ended = events
        .until(|e| match &e.event {
            Some(Event::Ended(ended)) => Some(ended.who_hung_up()),
            _ => None,
        })
        .await;
    assert_eq!(ended, pb::HungUpBy::Agent);
    events.state(pb::DeskState::WrapUp).await;
    phone.press_event('3').await;
    // The rating comes from the IVR at once; the ticket change once the journal wrote it.
    let (mut rating, mut changed) = (None, None);
    while rating.is_none() || changed.is_none() {
        events
            .until(|e| match &e.event {
                Some(Event::SurveyResult(s)) => {
                    rating = Some((s.call_id.clone(), s.rating));
                    Some(())
                }
                Some(Event::TicketChanged(t)) => {
                    changed = Some((t.call_id.clone(), t.name.clone(), t.status.clone()));
                    Some(())
                }
                _ => None,
            })
            .await;
    }
    assert_eq!(rating, Some((offered.call_id.clone(), 3)));
    assert_eq!(changed, Some((offered.call_id, name, "draft".into())));
    phone.expect_bye(10).await;
}

#[tokio::test]
async fn the_wallboard_counts_the_calls_placed() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let mut desk = Desk::start(
        &[("1001", &uri, "general")],
        "ring_timeout_secs = 15",
        "[desk]\nwrap_up_secs = 0\nshort_abandon_secs = 1\n",
    )
    .await;
    desk.set("1001", pb::DeskState::Ready, "").await;
    let mut board = wallboard(&mut desk).await;
    // 2 answered at once, then (the agent not ready) 1 hang-up within 1 s and 1 after 2 s.
    for _ in 0..2 {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        let ringing = agent.ringing(10).await;
        agent.answer(&ringing).await;
        assert_eq!(phone.bye().await, 200);
        assert_eq!(agent.expect_end(5).await, "BYE");
    }
    desk.set("1001", pb::DeskState::NotReady, "break").await;
    for wait in [Duration::from_millis(200), Duration::from_millis(2000)] {
        let mut phone = desk.phone().await;
        assert_eq!(phone.call().await, 200);
        tokio::time::sleep(after_greeting()).await;
        phone.press_inband('2').await;
        tokio::time::sleep(wait).await;
        assert_eq!(phone.bye().await, 200);
    }
    let lane = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update = board.message().await.unwrap().unwrap();
            if let Some(lane) = update.lanes.into_iter().find(|l| l.lane == "general")
                && lane.abandoned == 2
            {
                return lane;
            }
        }
    })
    .await
    .expect("the wallboard counted both abandons");
    assert_eq!((lane.offered, lane.answered), (4, 2));
    assert_eq!(lane.answered_within_threshold, 2);
    assert_eq!((lane.abandoned, lane.short_abandoned), (2, 1));
    assert_eq!(lane.service_level, Some(100.0));
    assert_eq!(lane.service_level2, Some(100.0));
    assert_eq!(lane.waiting, 0);
}

#[tokio::test]
async fn a_desktop_resuming_after_a_restart_is_told_to_resync() {
    let agent = AgentPhone::bind().await;
    let uri = agent.uri("1001");
    let agents = [("1001", uri.as_str(), "general")];
    let mut desk = Desk::start(&agents, "ring_timeout_secs = 15", "").await;
    let ready = desk.set("1001", pb::DeskState::Ready, "").await;
    assert_eq!(ready.version, 1);
    let position = {
        let mut stream = desk.stream("1001", None).await;
        let snapshot = next_event(&mut stream).await;
        (snapshot.epoch, snapshot.seq)
    };
    let Desk {
        stack, store, db, ..
    } = desk;
    stack.shutdown(Duration::from_millis(100)).await;
    let mut desk = Desk::start_on(store, db, &agents, "ring_timeout_secs = 15", "").await;
    let mut stream = desk.stream("1001", Some(position)).await;
    let resync = next_event(&mut stream).await;
    let Some(Event::ResyncRequired(r)) = resync.event else {
        panic!("{resync:?}");
    };
    assert_eq!(r.reason(), pb::ResyncReason::EpochChanged);
    let snapshot = next_event(&mut stream).await;
    let Some(Event::Snapshot(s)) = snapshot.event else {
        panic!("{snapshot:?}");
    };
    assert_ne!(snapshot.epoch, position.0);
    assert_eq!(
        s.status.unwrap().state(),
        pb::DeskState::LoggedOut,
        "agents start logged out"
    );
}
