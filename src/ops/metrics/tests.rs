//! The registry's own tests: what each source records, as a scrape shows it.

use super::*;
use crate::media::rtp_session::RtpCounters;
use crate::tickets::callback::Rating;

/// The value of the sample `name` (with its labels as printed) in `text`.
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn journal_entries_become_dispositions_latencies_nodes_and_ratings() {
    let m = Metrics::new();
    let at = Utc::now();
    m.on_call_entry(
        "c1",
        &CallEntry::Arrived {
            caller: "13812341234".into(),
            called: "4008".into(),
            at,
        },
    );
    m.on_call_entry(
        "c1",
        &CallEntry::Answered {
            at: at + chrono::TimeDelta::milliseconds(120),
        },
    );
    m.node_entered("menu");
    m.on_call_entry(
        "c1",
        &CallEntry::Survey {
            rating: Rating::Satisfied,
            key: '1',
            at,
        },
    );
    m.on_call_entry(
        "c1",
        &CallEntry::Recording {
            path: "x.wav".into(),
        },
    );
    m.leak_queued("c1");
    m.offered("c1");
    m.offered("c1");
    m.on_call_entry(
        "c1",
        &CallEntry::Ended {
            at,
            disposition: Disposition::Answered,
        },
    );
    let text = m.encode();
    assert_eq!(value(&text, "hotline_call_setup_seconds_count"), Some(1.0));
    assert_eq!(
        value(&text, "hotline_call_setup_seconds_bucket{le=\"0.1\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "hotline_call_setup_seconds_bucket{le=\"0.25\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "hotline_leak_offer_seconds_count"), Some(1.0));
    assert_eq!(
        value(&text, "hotline_ivr_node_entries_total{node=\"menu\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hotline_survey_ratings_total{rating=\"satisfied\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "hotline_recordings_written_total"), Some(1.0));
    assert_eq!(
        value(&text, "hotline_calls_ended_total{disposition=\"answered\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hotline_calls_ended_total{disposition=\"failed\"}"),
        Some(0.0)
    );
    // Nothing of the call stays behind; no caller number anywhere.
    assert!(lock(&m.pending).arrived.is_empty());
    assert!(!text.contains("1381234") && !text.contains("c1"), "{text}");
}

#[test]
fn media_counters_add_up_as_deltas_of_each_session() {
    let m = Metrics::new();
    let mut first = MediaStats {
        rtp: RtpCounters {
            packets_sent: 50,
            packets_received: 40,
            wrong_source: 2,
            ..RtpCounters::default()
        },
        ..MediaStats::default()
    };
    first.reorder.lost = 1;
    first.send_deviation.note(Duration::from_millis(3));
    m.add_media(&MediaStats::default(), &first);
    let mut second = first;
    second.rtp.packets_sent = 100;
    second.send_deviation.note(Duration::from_millis(30));
    m.add_media(&first, &second);
    let text = m.encode();
    assert_eq!(
        value(&text, "hotline_rtp_packets_total{direction=\"out\"}"),
        Some(100.0)
    );
    assert_eq!(
        value(&text, "hotline_rtp_packets_total{direction=\"in\"}"),
        Some(40.0)
    );
    assert_eq!(value(&text, "hotline_rtp_lost_packets_total"), Some(1.0));
    assert_eq!(
        value(&text, "hotline_rtp_dropped_source_packets_total"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "hotline_rtp_send_deviation_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "hotline_rtp_send_deviation_seconds_bucket{le=\"0.005\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "hotline_rtp_send_deviation_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "hotline_rtp_send_deviation_seconds_sum"),
        Some(0.033)
    );
}

struct Fixed(Mutex<LiveSample>);

impl LiveSource for Fixed {
    fn sample(&self) -> LiveSample {
        lock(&self.0).clone()
    }
}

#[test]
fn live_totals_become_counters_and_gauges_at_each_scrape() {
    let m = Metrics::new();
    let source = Arc::new(Fixed(Mutex::new(LiveSample {
        calls_in_progress: 2,
        queues: vec![("general".into(), 3, 41)],
        agents: vec![("ready", 1)],
        sip_requests: vec![("INVITE", 5)],
        sip_responses: vec![("INVITE", "2xx", 4), ("BYE", "2xx", 0)],
        sip_refused: vec![("acl", 1)],
        ..LiveSample::default()
    })));
    struct Shared(Arc<Fixed>);
    impl LiveSource for Shared {
        fn sample(&self) -> LiveSample {
            self.0.sample()
        }
    }
    m.set_live_source(Box::new(Shared(source.clone())));
    let text = m.encode();
    assert_eq!(value(&text, "hotline_calls_in_progress"), Some(2.0));
    assert_eq!(
        value(&text, "hotline_queue_waiting_calls{queue=\"general\"}"),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "hotline_queue_longest_wait_seconds{queue=\"general\"}"
        ),
        Some(41.0)
    );
    assert_eq!(value(&text, "hotline_agents{state=\"ready\"}"), Some(1.0));
    assert!(
        !text.contains("method=\"BYE\""),
        "zero responses stay out: {text}"
    );
    {
        let mut sample = lock(&source.0);
        sample.sip_requests = vec![("INVITE", 7)];
        sample.queues.clear();
    }
    let text = m.encode();
    assert_eq!(
        value(&text, "hotline_sip_requests_total{method=\"INVITE\"}"),
        Some(7.0)
    );
    assert_eq!(
        value(
            &text,
            "hotline_sip_responses_total{method=\"INVITE\",class=\"2xx\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&text, "hotline_sip_refused_total{reason=\"acl\"}"),
        Some(1.0)
    );
    assert!(
        !text.contains("queue=\"general\""),
        "a queue gone is gone: {text}"
    );
}

#[test]
fn ticket_counts_fill_every_status_and_deadline_kind() {
    let m = Metrics::new();
    m.set_tickets(&[("draft".into(), 3)]);
    m.set_ticket_deadlines(&[("dispatch", "overdue", 2)]);
    m.set_database_up(true);
    let text = m.encode();
    assert_eq!(value(&text, "hotline_tickets{status=\"draft\"}"), Some(3.0));
    assert_eq!(
        value(&text, "hotline_tickets{status=\"replied\"}"),
        Some(0.0)
    );
    assert_eq!(value(&text, "hotline_tickets{status=\"closed\"}"), None);
    let overdue = "hotline_ticket_deadlines{kind=\"dispatch\",timeliness=\"overdue\"}";
    assert_eq!(value(&text, overdue), Some(2.0));
    let nearly = "hotline_ticket_deadlines{kind=\"callback\",timeliness=\"nearly_due\"}";
    assert_eq!(value(&text, nearly), Some(0.0));
    assert_eq!(value(&text, "hotline_database_up"), Some(1.0));
    assert!(text.ends_with("# EOF\n"));
}
