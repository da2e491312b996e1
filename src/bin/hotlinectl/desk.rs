//! `hotlinectl desk AGENT_ID`: the reference client of `hotline.v1.AgentDesk`. Prints the
//! agent's events as they come (the screen pop as a readable block), and after a dropped
//! connection reconnects and resumes from the last `(epoch, seq)` it saw, saying so — and
//! saying when the daemon answered that it had to resync from a fresh snapshot.

use chrono::{DateTime, Local};
use clap::Args;
use hotline::api::pb;
use hotline::ctl::{self, ClientOptions, CtlError, Desk};
use pb::agent_desk_client::AgentDeskClient;
use pb::agent_event::Event;
use std::fmt::Write as _;
use std::time::Duration;
use tonic::{Code, Request};

#[derive(Debug, Args)]
pub struct DeskArgs {
    /// The agent id of [acd.agents]; an agent token may watch only its own.
    agent_id: String,
    /// Also print heartbeats.
    #[arg(long)]
    heartbeats: bool,
    /// Stop after this many events (for scripts); default: run until interrupted.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
}

/// Longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until interrupted (or `--max-events`); errors only when it cannot go on at all.
pub async fn run(options: &ClientOptions, args: DeskArgs) -> Result<(), CtlError> {
    let channel = ctl::endpoint(options)?
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_lazy();
    let mut client = AgentDeskClient::with_interceptor(channel, ctl::bearer(options)?);
    let mut position: Option<(u64, u64)> = None;
    let mut shown = 0u64;
    let mut backoff = Duration::from_millis(200);
    loop {
        match watch(&mut client, &args, &mut position, &mut shown).await {
            Ok(Finished::Done) => return Ok(()),
            Ok(Finished::Closed) => println!("-- the daemon closed the stream"),
            Err(status) if fatal(status.code()) => {
                return Err(CtlError::api(&options.endpoint, status));
            }
            Err(status) => println!("-- connection lost ({})", status.message()),
        }
        match position {
            Some((epoch, seq)) => println!(
                "-- reconnecting in {} ms, resuming after epoch {epoch} seq {seq}",
                backoff.as_millis()
            ),
            None => println!("-- reconnecting in {} ms", backoff.as_millis()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Finished {
    Done,
    Closed,
}

/// Errors a retry cannot fix.
fn fatal(code: Code) -> bool {
    matches!(
        code,
        Code::PermissionDenied | Code::NotFound | Code::Unauthenticated | Code::InvalidArgument
    )
}

async fn watch(
    client: &mut Desk,
    args: &DeskArgs,
    position: &mut Option<(u64, u64)>,
    shown: &mut u64,
) -> Result<Finished, tonic::Status> {
    let request = Request::new(pb::StreamEventsRequest {
        agent_id: args.agent_id.clone(),
        resume_from: position.map(|(epoch, seq)| pb::ResumeFrom { epoch, seq }),
    });
    let mut stream = client.stream_events(request).await?.into_inner();
    if position.is_some() {
        println!("-- connected, resuming");
    } else {
        println!("-- connected to agent {}", args.agent_id);
    }
    while let Some(event) = stream.message().await? {
        *position = Some((event.epoch, event.seq));
        if matches!(event.event, Some(Event::Heartbeat(_))) && !args.heartbeats {
            continue;
        }
        print!("{}", render(&event));
        *shown += 1;
        if args.max_events.is_some_and(|max| *shown >= max) {
            return Ok(Finished::Done);
        }
    }
    Ok(Finished::Closed)
}

fn when(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.with_timezone(&Local).format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "--:--:--".into())
}

fn state_name(state: i32) -> &'static str {
    match pb::DeskState::try_from(state) {
        Ok(pb::DeskState::LoggedOut) => "LOGGED_OUT",
        Ok(pb::DeskState::Ready) => "READY",
        Ok(pb::DeskState::NotReady) => "NOT_READY",
        Ok(pb::DeskState::Ringing) => "RINGING",
        Ok(pb::DeskState::OnCall) => "ON_CALL",
        Ok(pb::DeskState::WrapUp) => "WRAP_UP",
        _ => "?",
    }
}

fn with_reason(state: i32, reason: &str) -> String {
    if reason.is_empty() {
        state_name(state).to_owned()
    } else {
        format!("{}({reason})", state_name(state))
    }
}

/// One event as the terminal shows it (ends with a newline).
pub fn render(event: &pb::AgentEvent) -> String {
    let head = format!("[{} #{}]", when(event.at.as_ref()), event.seq);
    let Some(kind) = &event.event else {
        return format!("{head} (empty event)\n");
    };
    match kind {
        Event::StateChanged(s) => format!(
            "{head} state {} -> {} (version {})\n",
            with_reason(s.from, &s.from_reason_code),
            with_reason(s.to, &s.reason_code),
            s.version
        ),
        Event::Offered(o) => format!(
            "{head} RINGING: call {} (answer by {})\n{}",
            o.call_id,
            when(o.ring_deadline.as_ref()),
            offer_block(o)
        ),
        Event::OfferWithdrawn(w) => format!(
            "{head} offer of call {} withdrawn: {}\n",
            w.call_id,
            pb::WithdrawReason::try_from(w.reason)
                .map(|r| r
                    .as_str_name()
                    .trim_start_matches("WITHDRAW_REASON_")
                    .to_lowercase())
                .unwrap_or_default()
        ),
        Event::Connected(c) => format!("{head} connected to call {}\n", c.call_id),
        Event::Ended(e) => format!(
            "{head} call {} ended by {} after {} s\n",
            e.call_id,
            pb::HungUpBy::try_from(e.who_hung_up)
                .map(|w| w
                    .as_str_name()
                    .trim_start_matches("HUNG_UP_BY_")
                    .to_lowercase())
                .unwrap_or_default(),
            e.duration.as_ref().map_or(0, |d| d.seconds)
        ),
        Event::WrapUpStarted(w) => format!(
            "{head} wrap-up of call {} until {}\n",
            w.call_id,
            when(w.deadline.as_ref())
        ),
        Event::SurveyResult(s) => {
            let rating = match s.rating {
                1 => "satisfied",
                2 => "basically satisfied",
                3 => "unsatisfied",
                _ => "?",
            };
            format!(
                "{head} survey of call {}: {} ({rating})\n",
                s.call_id, s.rating
            )
        }
        Event::TicketChanged(t) => format!(
            "{head} ticket {} of call {} is now {}\n",
            t.name, t.call_id, t.status
        ),
        Event::Snapshot(s) => {
            let status = s.status.clone().unwrap_or_default();
            let mut out = format!(
                "{head} snapshot (epoch {}): {} version {}",
                event.epoch,
                with_reason(status.state, &status.reason_code),
                status.version
            );
            if status.pending_state != 0 {
                let _ = write!(
                    out,
                    ", then {}",
                    with_reason(status.pending_state, &status.pending_reason_code)
                );
            }
            out.push('\n');
            if let Some(offer) = s.call.as_ref().and_then(|c| c.offer.as_ref()) {
                out.push_str(&offer_block(offer));
            }
            out
        }
        Event::ResyncRequired(r) => format!(
            "{head} -- RESYNC: {}; what happened meanwhile is summed up by the snapshot below\n",
            match pb::ResyncReason::try_from(r.reason) {
                Ok(pb::ResyncReason::EpochChanged) => "the daemon restarted",
                Ok(pb::ResyncReason::HistoryCompacted) => "the events missed are no longer kept",
                Ok(pb::ResyncReason::TooSlow) => "this client fell too far behind",
                _ => "asked by the daemon",
            }
        ),
        Event::Heartbeat(_) => format!("{head} heartbeat\n"),
    }
}

/// The screen pop as a block of labelled lines.
fn offer_block(offer: &pb::Offered) -> String {
    let mut out = String::new();
    let Some(p) = &offer.screen_pop else {
        return "  (no screen pop)\n".into();
    };
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<14} {value}");
    };
    line(
        "caller",
        format!("{}  dialled {}", p.caller_number, p.dialled_number),
    );
    line(
        "queue",
        format!(
            "{}  priority {}{}  waited {} s",
            p.queue,
            p.priority,
            if p.leak { "  LEAK" } else { "" },
            p.seconds_waited
        ),
    );
    let path: Vec<String> = p
        .ivr_path
        .iter()
        .map(|s| match (s.key.is_empty(), s.entry.is_empty()) {
            (true, _) => s.node.clone(),
            (false, true) => format!("{}[{}]", s.node, s.key),
            (false, false) => format!("{}[{}={}]", s.node, s.entry, s.key),
        })
        .collect();
    line("ivr", path.join(" > "));
    if !p.recording_consent.is_empty() {
        line(
            "recording",
            format!("{} by {}", p.recording_consent, p.recording_consent_via),
        );
    }
    if !p.draft_ticket.is_empty() {
        line("draft ticket", p.draft_ticket.clone());
    }
    match &p.household {
        Some(h) => line(
            "household",
            format!(
                "{} ({}), {}, area {}{}",
                h.name,
                h.account_number,
                h.address,
                h.area,
                if h.special_group.is_empty() {
                    String::new()
                } else {
                    format!(", special group: {}", h.special_group)
                }
            ),
        ),
        None => line("household", "unknown number".into()),
    }
    if let Some(r) = &p.repeat_caller {
        let mut flags = Vec::new();
        if r.repeated_within_24h {
            flags.push(format!("{} calls in 24 h", r.calls_last_24h));
        }
        if r.open_complaint {
            flags.push("open complaint".into());
        }
        if !flags.is_empty() {
            line("REPEAT", flags.join(", "));
        }
    }
    for n in &offer.handover {
        line("handover", format!("{}: {}", n.from_agent, n.notes));
    }
    for t in &p.open_tickets {
        line(
            "open ticket",
            format!(
                "{} {} {} next due {}{}",
                t.number,
                t.category,
                t.status,
                when(t.next_deadline.as_ref()),
                if t.overdue { " OVERDUE" } else { "" }
            ),
        );
    }
    for c in &p.last_calls {
        line(
            "earlier call",
            format!(
                "{} {} {} agent {} ticket {}",
                when(c.arrived_at.as_ref()),
                c.ivr_path.join(">"),
                c.disposition,
                c.agent_id,
                c.ticket
            ),
        );
    }
    for l in &p.nearby_leaks {
        line(
            "leak nearby",
            format!(
                "{} {} {}{}",
                l.ticket,
                l.address,
                when(l.reported_at.as_ref()),
                if l.same_address { " SAME ADDRESS" } else { "" }
            ),
        );
    }
    for a in &p.outage_announcements {
        line("outage", a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pop_is_a_readable_block() {
        let event = pb::AgentEvent {
            epoch: 1,
            seq: 7,
            at: None,
            event: Some(Event::Offered(pb::Offered {
                call_id: "c1".into(),
                screen_pop: Some(pb::ScreenPop {
                    caller_number: "13812341234".into(),
                    queue: "repair".into(),
                    ivr_path: vec![pb::IvrStep {
                        node: "account".into(),
                        key: "8800123".into(),
                        entry: "account".into(),
                    }],
                    household: Some(pb::Household {
                        name: "王秀英".into(),
                        account_number: "8800123".into(),
                        ..Default::default()
                    }),
                    repeat_caller: Some(pb::RepeatCaller {
                        calls_last_24h: 2,
                        repeated_within_24h: true,
                        open_complaint: false,
                    }),
                    ..Default::default()
                }),
                ring_deadline: None,
                handover: vec![],
            })),
        };
        let text = render(&event);
        assert!(text.starts_with("[--:--:-- #7] RINGING: call c1"), "{text}");
        assert!(text.contains("  caller         13812341234"), "{text}");
        assert!(text.contains("account[account=8800123]"), "{text}");
        assert!(text.contains("王秀英 (8800123)"), "{text}");
        assert!(text.contains("REPEAT         2 calls in 24 h"), "{text}");
    }
}
