//! 50 agents subscribed while 200 calls run: the call stack in-process (`support/desk_rig.rs`)
//! with 50 agents READY, each with a desktop stream on `hotline.v1.AgentDesk` read by its own
//! gRPC client task and an `AgentPhone` answering every INVITE it gets, while a sipp UAC
//! (`uac_media.xml`, RFC 4733 key 2 for the general queue) places 200 short calls, 5 a
//! second. Every offer reaches exactly the stream of the agent whose phone rang, each stream
//! stays gapless without a resync, every call is answered and ends, the call rows close and
//! the daemon is left with nothing.

#[allow(dead_code)] // This binary drives the desk through sipp, not the test phone.
#[path = "support/desk_rig.rs"]
mod desk_rig;
#[path = "support/phone.rs"]
#[allow(dead_code)] // The phones' audio helpers are for other binaries.
mod phone;
#[allow(dead_code)] // This binary runs sipp to the end only.
#[path = "support/sipp.rs"]
mod sipp;
#[allow(dead_code)] // Shared test helpers: this binary uses the database and token part.
mod support;
#[allow(dead_code)]
#[path = "support/tools.rs"]
mod tools;

use desk_rig::{CALLER, Desk, HOTLINE, after_greeting};
use hotline::api::pb;
use pb::agent_event::Event;
use phone::AgentPhone;
use sipp::Sipp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const AGENTS: usize = 50;
const CALLS: usize = 200;
/// New calls per second: with about 5 s per call, some 25 calls run at once.
const RATE: u32 = 5;
/// RTP ports of this binary's daemon: the callers' and the agents' legs.
const RTP: (u16, u16) = (36000, 36399);

/// Answers every INVITE the phone gets (180, 200, the ACK) and the BYE that ends it, until
/// told to stop; returns how many calls rang it.
async fn answer_all(phone: AgentPhone, mut stop: watch::Receiver<bool>) -> usize {
    let mut rang = 0;
    loop {
        let ringing = tokio::select! {
            ringing = phone.ringing(600) => ringing,
            _ = stop.wait_for(|stop| *stop) => return rang,
        };
        rang += 1;
        phone.answer(&ringing).await;
        assert_eq!(phone.expect_end(60).await, "BYE");
    }
}

/// Reads the streams' events until `calls` calls have ended on them (3 minutes at most).
async fn collect(
    events: &mut mpsc::UnboundedReceiver<(usize, pb::AgentEvent)>,
    streams: &mut [Vec<pb::AgentEvent>],
    calls: usize,
) {
    let mut ended = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while ended < calls {
        let (agent, event) = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("only {ended} of {calls} calls ended on the desktops"))
            .expect("the streams go on");
        ended += usize::from(matches!(event.event, Some(Event::Ended(_))));
        streams[agent].push(event);
    }
}

/// One agent's stream: a snapshot first, history events gapless after its seq, no resync;
/// each offer followed by its Connected and Ended. Returns the calls offered, in order.
fn check_stream(agent: &str, events: &[pb::AgentEvent]) -> Vec<String> {
    let Some(Event::Snapshot(_)) = events.first().and_then(|e| e.event.as_ref()) else {
        panic!(
            "{agent}: the stream starts with a snapshot: {:?}",
            events.first()
        );
    };
    let mut seq = events[0].seq;
    let mut offered = Vec::new();
    let mut open: Option<(String, bool)> = None;
    for event in &events[1..] {
        let Some(kind) = &event.event else {
            panic!("{agent}: an event without a kind");
        };
        match kind {
            Event::Heartbeat(_) => continue,
            Event::ResyncRequired(r) => panic!("{agent}: resync {r:?}"),
            Event::Snapshot(_) => panic!("{agent}: a second snapshot"),
            _ => {}
        }
        assert_eq!(
            event.seq,
            seq + 1,
            "{agent}: a gap or a repeat after seq {seq}"
        );
        seq = event.seq;
        match kind {
            Event::Offered(o) => {
                assert!(
                    open.is_none(),
                    "{agent}: offered {} during a call",
                    o.call_id
                );
                offered.push(o.call_id.clone());
                let pop = o.screen_pop.as_ref().expect("a pop");
                assert_eq!(pop.caller_number, CALLER, "{agent}: the pop's caller");
                open = Some((o.call_id.clone(), false));
            }
            Event::OfferWithdrawn(w) => panic!("{agent}: offer withdrawn {w:?}"),
            Event::Connected(c) => {
                let current = open.as_mut().expect("connected to an offer");
                assert_eq!(current.0, c.call_id, "{agent}: connected to another call");
                current.1 = true;
            }
            Event::Ended(e) => {
                let (call, connected) = open.take().expect("an offered call ended");
                assert_eq!(call, e.call_id, "{agent}: another call ended");
                assert!(connected, "{agent}: {call} ended unconnected");
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "{agent}: a call still open: {open:?}");
    offered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_agents_stay_in_step_with_their_desktops_through_two_hundred_calls() {
    let mut phones = Vec::new();
    for _ in 0..AGENTS {
        phones.push(AgentPhone::bind().await);
    }
    let ids: Vec<String> = (0..AGENTS).map(|i| (3000 + i).to_string()).collect();
    let uris: Vec<String> = phones.iter().zip(&ids).map(|(p, id)| p.uri(id)).collect();
    let agents: Vec<(&str, &str, &str)> = ids
        .iter()
        .zip(&uris)
        .map(|(id, uri)| (id.as_str(), uri.as_str(), "general"))
        .collect();
    let (store, db) = support::fresh_database().await;
    let mut desk = Desk::start_with_rtp(
        store,
        db,
        &agents,
        "ring_timeout_secs = 15",
        "[desk]\nwrap_up_secs = 0\n",
        RTP,
    )
    .await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut stream = desk.stream(id, None).await;
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Ok(Some(event)) = stream.message().await {
                if tx.send((i, event)).is_err() {
                    return;
                }
            }
        }));
        desk.set(id, pb::DeskState::Ready, "").await;
    }
    let (stop, stopped) = watch::channel(false);
    let answering: Vec<_> = phones
        .into_iter()
        .map(|phone| tokio::spawn(answer_all(phone, stopped.clone())))
        .collect();

    let silence = vec![0xFF_u8; 8000];
    let wait_ms = after_greeting().as_millis().to_string();
    let sipp = Sipp {
        service: HOTLINE,
        calls: CALLS as u32,
        rate: RATE,
        vars: &[
            ("caller", CALLER),
            ("dtmf", "rfc4733"),
            ("digits", "2"),
            ("wait_ms", &wait_ms),
            ("hold_ms", "4000"),
            ("ends", "caller"),
        ],
        files: &[("caller.ulaw", &silence)],
        timeout_secs: 150,
        ..Sipp::new("uac_media.xml", desk.stack.sip_addr())
    };
    let started = std::time::Instant::now();
    let mut streams = vec![Vec::new(); AGENTS];
    tokio::join!(sipp.run_ok(), collect(&mut rx, &mut streams, CALLS));
    let took = started.elapsed();

    // The daemon is left with nothing, and the call rows are closed.
    desk.wait_idle().await;
    desk.stack.journal().flush().await;
    let rows: Vec<(String, Option<String>, bool)> = sqlx::query_as(
        "SELECT call_id, disposition, ended_at IS NOT NULL FROM calls ORDER BY call_id",
    )
    .fetch_all(&mut desk.connect().await)
    .await
    .unwrap();
    stop.send(true).unwrap();
    let mut rang = Vec::new();
    for phone in answering {
        rang.push(phone.await.unwrap());
    }
    for reader in readers {
        reader.abort();
    }
    // What follows the last Ended (the agents' READY) may still be on its way: not checked.
    let mut offered_calls = BTreeMap::new();
    for (i, events) in streams.iter().enumerate() {
        let offered = check_stream(&ids[i], events);
        assert_eq!(
            offered.len(),
            rang[i],
            "agent {}: offers on the desktop vs INVITEs to the phone",
            ids[i]
        );
        for call in offered {
            let earlier = offered_calls.insert(call.clone(), i);
            assert!(earlier.is_none(), "{call} offered twice");
        }
    }
    assert_eq!(offered_calls.len(), CALLS, "every call offered once");
    assert_eq!(rows.len(), CALLS, "one call row per call");
    for (call, disposition, ended) in &rows {
        assert!(offered_calls.contains_key(call), "{call} never offered");
        assert!(ended, "{call}: the row is closed");
        assert_eq!(disposition.as_deref(), Some("answered"), "{call}");
    }
    let busiest = rang.iter().max().copied().unwrap_or(0);
    let agents_used = rang.iter().filter(|n| **n > 0).count();
    let spread: BTreeSet<usize> = rang.iter().copied().collect();
    eprintln!(
        "{CALLS} calls over {AGENTS} agents in {took:.1?}: {agents_used} agents rang, \
         at most {busiest} calls each (counts seen: {spread:?})"
    );
}
