//! The overdue watcher and the alert stream: a sweep over the open tickets classifies each
//! binding deadline (`overdue::classify`), records the first time one becomes nearly due or
//! overdue (an audit event, once — the store remembers alerts raised), and publishes it on a
//! broadcast channel that `WatchTicketAlerts` streams to admins and agents (all alerts),
//! unit tokens (their unit's) and integrations (their channel's).
//!
//! `OverdueWatcher::sweep` takes `now`, so tests drive it without sleeping; `run` is the thin
//! tokio loop the daemon starts.

use super::auth::Caller;
use super::pb;
use super::tickets::{NAME_PREFIX, TicketsService, timestamp};
use super::transitions::{deadline_kind_to, timeliness_to};
use crate::store::{PageCursor, Store, StoreError};
use crate::tickets::deadlines::{self, Deadline};
use crate::tickets::overdue::{self, Timeliness};
use crate::tickets::{Channel, Rules};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

/// Open tickets read per round of a sweep.
const SWEEP_BATCH: u32 = 500;

/// One deadline that became nearly due or overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketAlert {
    pub number: String,
    pub unit: Option<String>,
    pub channel: Channel,
    pub deadline: Deadline,
    pub timeliness: Timeliness,
    pub raised_at: DateTime<Utc>,
}

impl TicketAlert {
    fn visible_to(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Admin { .. } | Caller::Agent { .. } => true,
            Caller::Unit { unit, .. } => self.unit.as_deref() == Some(unit),
            Caller::Integration { channel, .. } => self.channel == *channel,
        }
    }

    fn to_proto(&self) -> pb::TicketAlert {
        pb::TicketAlert {
            ticket: format!("{NAME_PREFIX}{}", self.number),
            responsible_unit: self.unit.clone().unwrap_or_default(),
            deadline: Some(pb::DeadlineState {
                kind: deadline_kind_to(self.deadline.kind),
                due: Some(timestamp(self.deadline.due)),
                timeliness: timeliness_to(self.timeliness),
            }),
            raise_time: Some(timestamp(self.raised_at)),
        }
    }
}

/// The stream `WatchTicketAlerts` answers with.
pub type AlertStream =
    Pin<Box<dyn Stream<Item = Result<pb::TicketAlert, tonic::Status>> + Send + 'static>>;

/// The alerts `caller` may see, as they are raised. A reader too slow for the backlog
/// skips what it missed (the alerts stay in the audit trail and in ListOverdue).
pub(super) fn stream_for(caller: Caller, alerts: broadcast::Receiver<TicketAlert>) -> AlertStream {
    Box::pin(
        BroadcastStream::new(alerts).filter_map(move |alert| match alert {
            Ok(alert) if alert.visible_to(&caller) => Some(Ok(alert.to_proto())),
            Ok(_) => None,
            Err(missed) => {
                tracing::warn!(%missed, "an alert stream reader fell behind");
                None
            }
        }),
    )
}

/// Sweeps the open tickets for deadlines that became nearly due or overdue.
#[derive(Clone)]
pub struct OverdueWatcher {
    store: Store,
    rules: Arc<Rules>,
    alerts: broadcast::Sender<TicketAlert>,
    clock: super::tickets::Clock,
}

impl TicketsService {
    /// The watcher publishing to this service's alert stream.
    pub fn overdue_watcher(&self) -> OverdueWatcher {
        OverdueWatcher {
            store: self.store.clone(),
            rules: self.rules.clone(),
            alerts: self.alerts.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl OverdueWatcher {
    /// Draws the heating line's callback sample (004 §5) of every unit's past days whose
    /// tickets still wait for it: each day once it has ended, so that the share called back
    /// is exact for the day's whole volume.
    pub async fn draw_samples(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        if self.rules.config.callback.sampling.is_none() {
            return Ok(());
        }
        let today = self.rules.calendar.local(now).date_naive();
        for (unit, day) in self.store.pending_sample_days(today, &self.rules).await? {
            let (chosen, volume) = self
                .store
                .draw_day_sample(&unit, day, now, &self.rules)
                .await?;
            tracing::info!(%unit, %day, chosen, volume, "callback sample drawn");
        }
        Ok(())
    }

    /// One sweep at `now`: the callback samples of days past, then every alert raised for
    /// the first time, also published.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<TicketAlert>, StoreError> {
        self.draw_samples(now).await?;
        let mut raised = Vec::new();
        let mut after = None;
        // Deadlines overdue or nearly due by (kind, timeliness), for the metrics.
        let mut late: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
        loop {
            let batch = self
                .store
                .open_tickets(None, None, after, SWEEP_BATCH)
                .await?;
            let exhausted = batch.len() < SWEEP_BATCH as usize;
            for (ticket, stored) in batch {
                after = Some(PageCursor {
                    at: ticket.created_at,
                    id: ticket.id,
                });
                let deadlines = deadlines::compute(&stored.facts, &self.rules);
                for state in overdue::classify(&stored.facts, &deadlines, now, &self.rules) {
                    if state.timeliness == Timeliness::OnTime {
                        continue;
                    }
                    *late
                        .entry((state.deadline.kind.code(), state.timeliness.code()))
                        .or_default() += 1;
                    let first = self
                        .store
                        .record_alert(
                            stored.id,
                            state.deadline.kind,
                            state.deadline.due,
                            state.timeliness,
                            now,
                        )
                        .await?;
                    if !first {
                        continue;
                    }
                    let alert = TicketAlert {
                        number: ticket.number.clone(),
                        unit: ticket.responsible_unit.clone(),
                        channel: ticket.channel,
                        deadline: state.deadline,
                        timeliness: state.timeliness,
                        raised_at: now,
                    };
                    tracing::info!(
                        ticket = %alert.number,
                        deadline = alert.deadline.kind.code(),
                        timeliness = alert.timeliness.code(),
                        "deadline alert"
                    );
                    // No subscriber is fine: the alert is in the audit trail.
                    let _ = self.alerts.send(alert.clone());
                    raised.push(alert);
                }
            }
            if exhausted {
                let late: Vec<_> = late.into_iter().map(|((k, t), n)| (k, t, n)).collect();
                crate::ops::metrics::global().set_ticket_deadlines(&late);
                return Ok(raised);
            }
        }
    }

    /// Sweeps every `every` until `shutdown` completes. A failed sweep is logged and the
    /// next one tries again.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => {
                    if let Err(err) = self.sweep((self.clock)()).await {
                        tracing::warn!(error = %err, "overdue sweep failed; retrying at the next tick");
                    }
                }
            }
        }
    }
}
