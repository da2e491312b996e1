//! What a metrics scrape reads from the running call handling ([`LiveSource`]): calls in
//! progress (the dispatcher's published counts), the desk's lanes and agents, the call
//! journal's backlog and the SIP endpoint's running totals. Cheap: a few watch reads and one
//! short lock of the desk.
//!
//! Owns the conversion into the metrics' plain sample; must not record anything itself.

use super::DispatcherCounts;
use super::desktops::Desktops;
use crate::ops::metrics::{LiveSample, LiveSource};
use crate::sip::stats::{CLASSES, METHODS, REFUSAL_REASONS, SipStats};
use crate::store::CallJournal;
use tokio::sync::watch;

/// The call handling as a metrics scrape sees it (from [`super::CallStack::metrics_source`]).
pub struct CallMetrics {
    pub(super) counts: watch::Receiver<DispatcherCounts>,
    pub(super) sip_stats: watch::Receiver<SipStats>,
    pub(super) desktops: Desktops,
    pub(super) journal: CallJournal,
}

impl LiveSource for CallMetrics {
    fn sample(&self) -> LiveSample {
        let (lanes, agents) = self.desktops.board();
        let sip = self.sip_stats.borrow().clone();
        LiveSample {
            calls_in_progress: self.counts.borrow().calls,
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
        }
    }
}
