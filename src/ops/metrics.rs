//! The daemon's Prometheus metrics: one registry (the `prometheus-client` crate) holding every
//! metric `hotlined` exports, what records into it, and its text exposition. Served over HTTP
//! by [`super::metrics_http`] when `[metrics] listen` is set; recorded always (atomic adds).
//!
//! Where the numbers come from — the protocol cores never see this module:
//! - the call journal's entries, as they are recorded ([`Metrics::on_call_entry`]: calls
//!   ended by disposition, setup latency, survey ratings, recordings written);
//! - the call layer: the IVR's node entries ([`Metrics::node_entered`]), media sessions'
//!   periodic counters ([`Metrics::add_media`]), leak calls queued and offered
//!   ([`Metrics::leak_queued`], [`Metrics::offered`]);
//! - at each scrape, a [`LiveSource`] the daemon registers: calls in progress, the desk's
//!   lanes and agents, the journal backlog, the SIP endpoint's totals;
//! - the work beside the calls: recordings purged, the ticket counts (a periodic query,
//!   [`run_ticket_sampler`], which also tells whether the database answers) and the overdue
//!   watcher's deadline counts.
//!
//! Labels come from fixed sets or the configuration (dispositions, ratings, methods, queue
//! and node names): never call ids, phone numbers or agent ids.
//!
//! One registry per process ([`global`]): the places that record are spread over the call
//! layer, the store's journal and the work beside the calls, each set up in many ways (the
//! tests build call stacks directly), so they reach it rather than being handed it. Only the
//! daemon serves it; recording without serving costs a few atomic adds.
//!
//! Owns the metric names and their meaning; must not decide anything about calls.

use crate::media::pacer::{SEND_DEVIATION_BOUNDS_US, SendDeviation};
use crate::media::session::MediaStats;
use crate::store::{CallEntry, Disposition, Store};
use crate::tickets::Status;
use crate::tickets::deadlines::DeadlineKind;
use crate::tickets::overdue::Timeliness;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label.
type Label = [(&'static str, String); 1];
/// Two labels.
type Labels2 = [(&'static str, String); 2];

/// What the daemon knows at the moment of a scrape, read from the running call handling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSample {
    pub calls_in_progress: usize,
    /// Per queue (each queue, and the leak lane): calls waiting, longest wait in seconds.
    pub queues: Vec<(String, u32, u64)>,
    /// Agents per state (`logged_out`, `ready`, …).
    pub agents: Vec<(&'static str, u32)>,
    /// Call journal records waiting in memory, and bytes waiting in the spool file.
    pub journal_records: usize,
    pub journal_spool_bytes: u64,
    /// Running totals of the SIP endpoint: requests by method, responses by method and
    /// class, refusals by reason.
    pub sip_requests: Vec<(&'static str, u64)>,
    pub sip_responses: Vec<(&'static str, &'static str, u64)>,
    pub sip_refused: Vec<(&'static str, u64)>,
    /// What the daemon holds now, by kind (calls, media sessions, RTP port pairs, timers, SIP
    /// transactions, …): each stays flat under a flat load, so growth is a leak.
    pub live_objects: Vec<(&'static str, u64)>,
}

/// Where [`LiveSample`]s come from (the call layer implements it).
pub trait LiveSource: Send + Sync {
    fn sample(&self) -> LiveSample;
}

/// A histogram whose buckets are added to in bulk: the media sessions keep their own fixed
/// buckets ([`SendDeviation`]) without allocating per packet, and hand their counts over.
#[derive(Debug, Default, Clone)]
struct BulkHistogram {
    totals: Arc<Mutex<SendDeviation>>,
}

impl BulkHistogram {
    fn add(&self, before: &SendDeviation, now: &SendDeviation) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (total, (b, n)) in totals
            .buckets
            .iter_mut()
            .zip(before.buckets.iter().zip(&now.buckets))
        {
            *total += n.saturating_sub(*b);
        }
        totals.sum_us += now.sum_us.saturating_sub(before.sum_us);
    }
}

impl EncodeMetric for BulkHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let totals = *self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let bounds = SEND_DEVIATION_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(totals.buckets).collect();
        encoder.encode_histogram::<NoLabelSet>(
            totals.sum_us as f64 / 1e6,
            totals.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Per-call starting points of the latency histograms; entries leave when the call ends, so
/// this holds at most the calls in progress.
#[derive(Default)]
struct Pending {
    arrived: HashMap<String, DateTime<Utc>>,
    leak_queued: HashMap<String, Instant>,
}

/// Totals last read from a [`LiveSource`], to turn running totals into counter increments.
#[derive(Default)]
struct Seen {
    sip: HashMap<(&'static str, &'static str, &'static str), u64>,
}

pub struct Metrics {
    registry: Registry,
    calls_in_progress: Gauge,
    calls_ended: Family<Label, Counter>,
    call_setup: Histogram,
    leak_offer: Histogram,
    ivr_node_entries: Family<Label, Counter>,
    survey_ratings: Family<Label, Counter>,
    recordings_written: Counter,
    recordings_purged: Counter,
    queue_waiting: Family<Label, Gauge>,
    queue_longest_wait: Family<Label, Gauge>,
    agents: Family<Label, Gauge>,
    live_objects: Family<Label, Gauge>,
    rtp_packets: Family<Label, Counter>,
    rtp_lost: Counter,
    rtp_late: Counter,
    rtp_dropped_source: Counter,
    rtp_send_deviation: BulkHistogram,
    journal_records: Gauge,
    journal_spool_bytes: Gauge,
    database_up: Gauge,
    sip_requests: Family<Label, Counter>,
    sip_responses: Family<Labels2, Counter>,
    sip_refused: Family<Label, Counter>,
    tickets: Family<Label, Gauge>,
    ticket_deadlines: Family<Labels2, Gauge>,
    pending: Mutex<Pending>,
    live: Mutex<Option<Box<dyn LiveSource>>>,
    seen: Mutex<Seen>,
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Every disposition a call row can end with (for zero-valued series from the start).
const DISPOSITIONS: [Disposition; 12] = [
    Disposition::Answered,
    Disposition::AbandonedInIvr,
    Disposition::AbandonedInQueue,
    Disposition::SelfServed,
    Disposition::Transferred,
    Disposition::Failed,
    Disposition::Interrupted,
    Disposition::MediaTimeout,
    Disposition::MaxDuration,
    Disposition::QueueTimeout,
    Disposition::SessionExpired,
    Disposition::SessionRefreshFailed,
];

/// Every deadline kind (for zero-valued series).
const DEADLINE_KINDS: [DeadlineKind; 7] = [
    DeadlineKind::Dispatch,
    DeadlineKind::Contact,
    DeadlineKind::Finish,
    DeadlineKind::Investigation,
    DeadlineKind::Callback,
    DeadlineKind::OnSite,
    DeadlineKind::ReplyToCaller,
];

fn label(name: &'static str, value: impl Into<String>) -> Label {
    [(name, value.into())]
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counters and maps: a panic elsewhere leaves them usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The daemon's one registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered (tests make their own; the daemon uses
    /// [`global`]).
    pub fn new() -> Metrics {
        let secs = |bounds: &[f64]| Histogram::new(bounds.iter().copied());
        let m = Metrics {
            registry: Registry::with_prefix("hotline"),
            calls_in_progress: Gauge::default(),
            calls_ended: Family::default(),
            call_setup: secs(&[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            leak_offer: secs(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
            ivr_node_entries: Family::default(),
            survey_ratings: Family::default(),
            recordings_written: Counter::default(),
            recordings_purged: Counter::default(),
            queue_waiting: Family::default(),
            queue_longest_wait: Family::default(),
            agents: Family::default(),
            live_objects: Family::default(),
            rtp_packets: Family::default(),
            rtp_lost: Counter::default(),
            rtp_late: Counter::default(),
            rtp_dropped_source: Counter::default(),
            rtp_send_deviation: BulkHistogram::default(),
            journal_records: Gauge::default(),
            journal_spool_bytes: Gauge::default(),
            database_up: Gauge::default(),
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            sip_refused: Family::default(),
            tickets: Family::default(),
            ticket_deadlines: Family::default(),
            pending: Mutex::default(),
            live: Mutex::new(None),
            seen: Mutex::default(),
            scrape: Mutex::new(()),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        // Name (after the `hotline_` prefix; counters get `_total`), metric, help.
        macro_rules! register {
            ($($name:literal $metric:ident $help:literal;)*) => {
                $(r.register($name, $help, self.$metric.clone());)*
            };
        }
        register! {
            "calls_in_progress" calls_in_progress
                "Incoming calls up now";
            "calls_ended" calls_ended
                "Calls ended, by the disposition of their call row";
            "call_setup_seconds" call_setup
                "From the caller's INVITE to the call answered and its media started (the ACK)";
            "leak_offer_seconds" leak_offer
                "From the leak key to the first offer of the call to an agent (the phone rings)";
            "ivr_node_entries" ivr_node_entries
                "IVR nodes entered, by node id (configured node ids, leak, survey)";
            "survey_ratings" survey_ratings
                "Post-call survey answers, by rating";
            "recordings_written" recordings_written
                "Call recordings started";
            "recordings_purged" recordings_purged
                "Call recordings deleted by retention";
            "queue_waiting_calls" queue_waiting
                "Calls waiting, by queue (leak calls on the leak lane)";
            "queue_longest_wait_seconds" queue_longest_wait
                "The longest current wait, by queue";
            "agents" agents
                "Agents by desk state";
            "live_objects" live_objects
                "What the daemon holds now, by kind (calls, outgoing legs, media sessions, RTP port pairs, timers, SIP transactions and dialogs, TCP connections): flat under a flat load";
            "rtp_packets" rtp_packets
                "RTP packets received from peers (in) and sent (out)";
            "rtp_lost_packets" rtp_lost
                "Caller RTP packets never received (sequence gaps)";
            "rtp_late_packets" rtp_late
                "Caller RTP packets that came after their place was played";
            "rtp_dropped_source_packets" rtp_dropped_source
                "RTP and RTCP datagrams dropped: not from the call's peer";
            "rtp_send_deviation_seconds" rtp_send_deviation
                "How late each RTP frame went out after its 20 ms deadline";
            "journal_backlog_records" journal_records
                "Call journal records waiting in memory for the database";
            "journal_spool_bytes" journal_spool_bytes
                "Call journal bytes spooled on disk while the database was unreachable";
            "database_up" database_up
                "1 when the last periodic ticket query was answered, else 0";
            "sip_requests" sip_requests
                "SIP requests received, by method (known methods, else other)";
            "sip_responses" sip_responses
                "SIP responses sent, by method and class";
            "sip_refused" sip_refused
                "SIP requests and TCP connections refused, by reason (acl, rate_limit, tcp_limit)";
            "tickets" tickets
                "Open tickets by status (closed ones left out)";
            "ticket_deadlines" ticket_deadlines
                "Open tickets' deadlines overdue or nearly due, by kind (last overdue sweep)";
        }
        self.zeros();
        self
    }

    /// Series of fixed label sets start at zero, so dashboards and rates see them at once.
    fn zeros(&self) {
        for d in DISPOSITIONS {
            drop(
                self.calls_ended
                    .get_or_create(&label("disposition", d.code())),
            );
        }
        for rating in ["satisfied", "basically_satisfied", "unsatisfied"] {
            drop(self.survey_ratings.get_or_create(&label("rating", rating)));
        }
        for direction in ["in", "out"] {
            drop(
                self.rtp_packets
                    .get_or_create(&label("direction", direction)),
            );
        }
    }

    /// From now on, each scrape first reads `source`.
    pub fn set_live_source(&self, source: Box<dyn LiveSource>) {
        *lock(&self.live) = Some(source);
    }

    /// The journal's view of a call: every entry as it is recorded.
    pub fn on_call_entry(&self, call_id: &str, entry: &CallEntry) {
        match entry {
            CallEntry::Arrived { at, .. } => {
                lock(&self.pending).arrived.insert(call_id.to_owned(), *at);
            }
            CallEntry::Answered { at } => {
                let arrived = lock(&self.pending).arrived.remove(call_id);
                if let Some(arrived) = arrived {
                    let setup = (*at - arrived).to_std().unwrap_or_default();
                    self.call_setup.observe(setup.as_secs_f64());
                }
            }
            CallEntry::Survey { rating, .. } => {
                self.survey_ratings
                    .get_or_create(&label("rating", rating.code()))
                    .inc();
            }
            CallEntry::Recording { .. } => {
                self.recordings_written.inc();
            }
            CallEntry::Ended { disposition, .. } => {
                self.calls_ended
                    .get_or_create(&label("disposition", disposition.code()))
                    .inc();
                let mut pending = lock(&self.pending);
                pending.arrived.remove(call_id);
                pending.leak_queued.remove(call_id);
            }
            _ => {}
        }
    }

    /// A call entered an IVR node (a configured node id, `leak` or `survey`).
    pub fn node_entered(&self, node: &str) {
        self.ivr_node_entries
            .get_or_create(&label("node", node))
            .inc();
    }

    /// A leak call entered its queue (at the leak key): its offer latency starts now, unless
    /// it already runs.
    pub fn leak_queued(&self, call_id: &str) {
        lock(&self.pending)
            .leak_queued
            .entry(call_id.to_owned())
            .or_insert_with(Instant::now);
    }

    /// The call was offered to an agent (the desktop has the offer, the phone rings).
    pub fn offered(&self, call_id: &str) {
        let queued = lock(&self.pending).leak_queued.remove(call_id);
        if let Some(queued) = queued {
            self.leak_offer.observe(queued.elapsed().as_secs_f64());
        }
    }

    /// A media session's counters went from `before` to `now` (its periodic stats).
    pub fn add_media(&self, before: &MediaStats, now: &MediaStats) {
        let delta = |b: u64, n: u64| n.saturating_sub(b);
        let (b, n) = (&before.rtp, &now.rtp);
        self.rtp_packets
            .get_or_create(&label("direction", "in"))
            .inc_by(delta(b.packets_received, n.packets_received));
        self.rtp_packets
            .get_or_create(&label("direction", "out"))
            .inc_by(delta(b.packets_sent, n.packets_sent));
        self.rtp_dropped_source
            .inc_by(delta(b.wrong_source, n.wrong_source));
        self.rtp_lost
            .inc_by(delta(before.reorder.lost, now.reorder.lost));
        self.rtp_late
            .inc_by(delta(before.reorder.late, now.reorder.late));
        self.rtp_send_deviation
            .add(&before.send_deviation, &now.send_deviation);
    }

    pub fn recordings_purged(&self, count: u64) {
        self.recordings_purged.inc_by(count);
    }

    /// Open tickets per status code, as counted now (open statuses not in `counts` are zero).
    pub fn set_tickets(&self, counts: &[(String, i64)]) {
        for status in Status::ALL.iter().filter(|s| **s != Status::Closed) {
            let count = counts
                .iter()
                .find(|(code, _)| code == status.code())
                .map_or(0, |(_, n)| *n);
            self.tickets
                .get_or_create(&label("status", status.code()))
                .set(count);
        }
    }

    /// The deadlines overdue or nearly due, per (kind, timeliness) code, from a complete
    /// sweep; pairs not in `counts` are zero.
    pub fn set_ticket_deadlines(&self, counts: &[(&'static str, &'static str, i64)]) {
        for kind in DEADLINE_KINDS {
            for timeliness in [Timeliness::Overdue, Timeliness::NearlyDue] {
                let (kind, timeliness) = (kind.code(), timeliness.code());
                let count = counts
                    .iter()
                    .find(|(k, t, _)| *k == kind && *t == timeliness)
                    .map_or(0, |(_, _, n)| *n);
                let labels = [
                    ("kind", kind.to_owned()),
                    ("timeliness", timeliness.to_owned()),
                ];
                self.ticket_deadlines.get_or_create(&labels).set(count);
            }
        }
    }

    pub fn set_database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }

    /// Reads the live source into the gauges and counters it feeds.
    fn refresh(&self) {
        let sample = match lock(&self.live).as_ref() {
            Some(source) => source.sample(),
            None => return,
        };
        self.calls_in_progress
            .set(i64::try_from(sample.calls_in_progress).unwrap_or(i64::MAX));
        // Queues may come and go with a reload: only the current ones are shown.
        self.queue_waiting.clear();
        self.queue_longest_wait.clear();
        for (queue, waiting, longest) in &sample.queues {
            let l = label("queue", queue.as_str());
            self.queue_waiting.get_or_create(&l).set((*waiting).into());
            self.queue_longest_wait
                .get_or_create(&l)
                .set(i64::try_from(*longest).unwrap_or(i64::MAX));
        }
        for (state, count) in &sample.agents {
            self.agents
                .get_or_create(&label("state", *state))
                .set((*count).into());
        }
        for (kind, count) in &sample.live_objects {
            self.live_objects
                .get_or_create(&label("kind", *kind))
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.journal_records
            .set(i64::try_from(sample.journal_records).unwrap_or(i64::MAX));
        self.journal_spool_bytes
            .set(i64::try_from(sample.journal_spool_bytes).unwrap_or(i64::MAX));
        let mut seen = lock(&self.seen);
        let mut advance = |key: (&'static str, &'static str, &'static str), total: u64| {
            let last = seen.sip.insert(key, total).unwrap_or(0);
            total.saturating_sub(last)
        };
        for (method, total) in &sample.sip_requests {
            let add = advance(("request", method, ""), *total);
            self.sip_requests
                .get_or_create(&label("method", *method))
                .inc_by(add);
        }
        for (method, class, total) in &sample.sip_responses {
            let add = advance(("response", method, class), *total);
            if *total > 0 {
                let labels = [
                    ("method", (*method).to_owned()),
                    ("class", (*class).to_owned()),
                ];
                self.sip_responses.get_or_create(&labels).inc_by(add);
            }
        }
        for (reason, total) in &sample.sip_refused {
            let add = advance(("refused", reason, ""), *total);
            self.sip_refused
                .get_or_create(&label("reason", *reason))
                .inc_by(add);
        }
    }

    /// The exposition text of every metric, the live ones read now. Scrapes take turns, so
    /// one never sees another's half-refreshed queue gauges.
    pub fn encode(&self) -> String {
        let _turn = lock(&self.scrape);
        self.refresh();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts the open tickets per status every `every`, and says whether the database answered.
/// The query reads the open tickets' partial index, off the call path; a failure sets
/// `database_up` to 0.
pub async fn run_ticket_sampler(store: Store, every: Duration) {
    let metrics = global();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.open_ticket_counts_by_status().await {
            Ok(counts) => {
                metrics.set_database_up(true);
                metrics.set_tickets(&counts);
            }
            Err(err) => {
                metrics.set_database_up(false);
                tracing::debug!(error = %err, "metrics: ticket counts not read");
            }
        }
    }
}

#[cfg(test)]
mod tests;
