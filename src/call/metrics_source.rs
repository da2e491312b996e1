//! What a metrics scrape reads from the running call handling ([`LiveSource`]): calls in
//! progress and the objects held (the dispatcher's, the SIP endpoint's and the media's
//! published counts), the desk's lanes and agents, the call journal's backlog and the SIP
//! endpoint's running totals. Cheap: a few watch reads and one
//! short lock of the desk.
//!
//! Owns the conversion into the metrics' plain sample; must not record anything itself.

use super::LiveSources;
use super::desktops::Desktops;
use crate::ops::metrics::{LiveSample, LiveSource};
use crate::sip::stats::{CLASSES, METHODS, REFUSAL_REASONS, SipStats};
use crate::store::CallJournal;
use tokio::sync::watch;

/// The call handling as a metrics scrape sees it (from [`super::CallStack::metrics_source`]).
pub struct CallMetrics {
    pub(super) live: LiveSources,
    pub(super) sip_stats: watch::Receiver<SipStats>,
    pub(super) desktops: Desktops,
    pub(super) journal: CallJournal,
}

impl LiveSource for CallMetrics {
    fn sample(&self) -> LiveSample {
        let (lanes, agents) = self.desktops.board();
        let sip = self.sip_stats.borrow().clone();
        let live = self.live.counts();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        LiveSample {
            calls_in_progress: live.calls,
            queues: lanes
                .into_iter()
                .map(|lane| (lane.lane, lane.waiting, lane.longest_wait_secs))
                .collect(),
            agents: vec![
                ("logged_out", agents.logged_out),
                ("ready", agents.ready),
                ("not_ready", agents.not_ready),
                ("ringing", agents.ringing),
                ("on_call", agents.on_call),
                ("wrap_up", agents.wrap_up),
            ],
            journal_records: self.journal.queued_records(),
            journal_spool_bytes: self.journal.spooled_bytes(),
            sip_requests: METHODS.iter().copied().zip(sip.requests).collect(),
            sip_responses: METHODS
                .iter()
                .zip(sip.responses)
                .flat_map(|(method, classes)| {
                    CLASSES
                        .iter()
                        .zip(classes)
                        .map(move |(class, count)| (*method, *class, count))
                })
                .collect(),
            sip_refused: REFUSAL_REASONS.iter().copied().zip(sip.refused).collect(),
            live_objects: vec![
                ("calls", count(live.calls)),
                ("outgoing_legs", count(live.outgoing_legs)),
                ("media_sessions", count(live.media_sessions)),
                ("rtp_port_pairs", count(live.port_leases)),
                ("timers", count(live.timers)),
                (
                    "sip_server_transactions",
                    count(live.sip.endpoint.server_transactions),
                ),
                (
                    "sip_client_transactions",
                    count(live.sip.endpoint.client_transactions),
                ),
                ("sip_dialogs", count(live.sip.endpoint.calls)),
                (
                    "sip_session_timers",
                    count(live.sip.endpoint.session_timers),
                ),
                ("tcp_connections", count(live.sip.tcp_connections)),
            ],
        }
    }
}
