//! Measures the sans-IO leak path: the leak digit pressed at the main menu → the IVR queues the
//! call with leak priority → the ACD offers it to the free emergency agent. No I/O, so this is
//! the engine's share of the "press 1 → agent's phone rings" time. Run with
//! `cargo bench --bench leak_path`.

use chrono::TimeZone;
use hotline::acd::{Acd, AcdAction, AcdConfig, AcdEvent, ReportedState};
use hotline::call::acd_link::route_digit;
use hotline::ivr::{Action, CallEngine, CallInfo, Event, IvrConfig};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const IVR: &str = r#"
[numbers.default]
flow = "main"

[flows.main]
start = "menu"
greeting = ["welcome"]

[flows.main.nodes.menu]
kind = "menu"
options = [{ digit = "0", next = "agent", label = "label_person" }]
fallback = "agent"

[flows.main.nodes.agent]
kind = "queue"
queue = "general"
category = "consultation"
"#;

const ACD: &str = r#"
[leak]
on_call_uri = "sip:oncall@127.0.0.1"

[queues.emergency]
category = "leak"

[queues.general]
category = "consultation"

[agents.a1]
uri = "sip:1001@127.0.0.1"
queues = ["emergency"]

[agents.a2]
uri = "sip:1002@127.0.0.1"
queues = ["general"]
"#;

const ITERATIONS: u32 = 200_000;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
/// then only the correctness check below runs, not the timing loops.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ivr: IvrConfig = toml::from_str(IVR)?;
    let acd_config: AcdConfig = toml::from_str(ACD)?;
    let now = Instant::now();

    // A call at the main menu, and an ACD with both agents free.
    let mut call = CallEngine::new(Arc::new(ivr));
    let local_time = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 23, 3, 0, 0)
        .single()
        .ok_or("bad date")?;
    let intro = call.handle(Event::Answered {
        info: CallInfo {
            call_id: "bench".into(),
            did: "956100".into(),
            caller: "13812341234".into(),
            local_time,
            has_open_ticket: false,
            announcements: Vec::new(),
            special_group: None,
        },
        now,
    });
    let Some(Action::Play { id, .. }) = intro.iter().find(|a| matches!(a, Action::Play { .. }))
    else {
        return Err("no greeting played".into());
    };
    call.handle(Event::PromptFinished { id: *id, now });
    let mut acd: Acd<String> = Acd::new(Arc::new(acd_config), now);
    let call_key = String::from("bench");
    for agent in ["a1", "a2"] {
        acd.handle(AcdEvent::AgentStateChanged {
            agent: agent.into(),
            state: ReportedState::Available,
            now,
        });
    }

    // Check once that the path really ends in an offer to the emergency agent.
    let (_, offered) = route_digit(&mut call.clone(), &mut acd.clone(), &call_key, '1', now);
    if !matches!(offered.first(), Some(AcdAction::OfferToAgent { agent, .. }) if agent == "a1") {
        return Err(format!("leak digit did not reach the emergency agent: {offered:?}").into());
    }

    if !measuring() {
        println!(
            "leak_path: the leak digit reaches the emergency agent (run `cargo bench` to time it)"
        );
        return Ok(());
    }

    // Each iteration starts from the same state; the clone is measured on its own.
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        black_box((call.clone(), acd.clone()));
    }
    let clone_ns = start.elapsed().as_nanos() / u128::from(ITERATIONS);

    let start = Instant::now();
    for _ in 0..ITERATIONS {
        let (mut c, mut a) = (call.clone(), acd.clone());
        black_box(route_digit(&mut c, &mut a, &call_key, '1', now));
    }
    let total_ns = start.elapsed().as_nanos() / u128::from(ITERATIONS);

    println!("leak_path: state clone            {clone_ns:>6} ns/op");
    println!("leak_path: clone + digit → offer  {total_ns:>6} ns/op");
    println!(
        "leak_path: digit → offer (net)    {:>6} ns/op over {ITERATIONS} iterations",
        total_ns.saturating_sub(clone_ns)
    );
    Ok(())
}
