//! The agents' desktops at run time: one [`Desk`] (the sans-IO core of `desk`) behind a
//! mutex, a task that runs its timers, and the carrying out of its actions — waking the
//! streams that have events, writing the state timeline and dispositions to the store, and
//! handing availability changes and call control to the dispatcher.
//!
//! A mutex rather than a task of its own because the desk's work per request is a few map
//! operations: the API's handlers, the streams draining their outboxes and the dispatcher
//! feeding call events each take it briefly, and never across an await.
//!
//! Owns the desk's clock and I/O; must not decide anything about agents (the desk does).

use crate::config::Config;
use crate::desk::{
    AgentState, AgentView, AgentsByState, CallControl, Desk, DeskAction, DeskConfig, DeskError,
    DeskInput, LaneBoard, LiveCall, Requested, Roster, StreamItem, SubId,
};
use crate::store::{
    CallEntry, CallJournal, ScreenPop, StateChangeRecord, Store, agent_journal_key,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

/// What the dispatcher must carry out for the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskOrder {
    /// The ACD may (or may no longer) offer calls to the agent.
    Availability { agent: String, ready: bool },
    Control {
        call: String,
        agent: String,
        control: CallControl,
    },
}

enum StoreWrite {
    Timeline(StateChangeRecord),
    Disposition {
        call: String,
        agent: String,
        code: String,
        notes: String,
    },
}

struct Inner {
    desk: Mutex<Desk<ScreenPop>>,
    wakers: Mutex<HashMap<SubId, Arc<Notify>>>,
    /// Re-arms the timer task after anything that may move the next deadline.
    rearm: Notify,
    orders: mpsc::UnboundedSender<DeskOrder>,
    writes: mpsc::UnboundedSender<StoreWrite>,
    /// Where the state timeline goes when set: the call journal, which keeps it through a
    /// database outage. Without it, straight to the store.
    timeline: Option<CallJournal>,
}

/// A cheap, clonable handle on the desktops.
#[derive(Clone)]
pub struct Desktops {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Desktops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desktops").finish_non_exhaustive()
    }
}

/// The narrow hook through which ticket writes tell the desktops that a call's ticket
/// changed: the Tickets API calls it after each successful commit, the wrap-up writer after
/// it stored the notes on the draft. The agent with the call (or still wrapping it up) gets
/// `TicketChanged{name, status}`. Holds the desk weakly: a hook outliving the call handling
/// does nothing.
#[derive(Clone)]
pub struct TicketChanges {
    inner: Weak<Inner>,
}

impl std::fmt::Debug for TicketChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketChanges").finish_non_exhaustive()
    }
}

impl TicketChanges {
    /// Ticket `number` of call `call_id` now has status `status` (its code).
    pub fn changed(&self, call_id: &str, number: &str, status: &str) {
        if let Some(inner) = self.inner.upgrade() {
            Desktops { inner }.feed(DeskInput::TicketChanged {
                call: call_id.to_owned(),
                name: number.to_owned(),
                status: status.to_owned(),
            });
        }
    }
}

/// The tasks behind [`Desktops`]; abort them on shutdown.
pub struct DesktopTasks {
    pub timers: JoinHandle<()>,
    pub writer: JoinHandle<()>,
    /// Applies reloaded configurations (absent when started without a configuration feed).
    pub reload: Option<JoinHandle<()>>,
}

impl DesktopTasks {
    pub fn abort(&self) {
        self.timers.abort();
        self.writer.abort();
        if let Some(reload) = &self.reload {
            reload.abort();
        }
    }
}

/// The agents and queues of `[acd]`, as the desk knows them.
pub fn roster(acd: &crate::acd::AcdConfig) -> Roster {
    Roster {
        agents: acd
            .agents
            .iter()
            .map(|(id, agent)| (id.clone(), agent.queues.clone()))
            .collect(),
        queues: acd.queues.keys().cloned().collect(),
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn state_code(state: &AgentState) -> (String, Option<String>) {
    (
        state.name().to_owned(),
        state.reason_code().map(str::to_owned),
    )
}

impl Desktops {
    /// Starts the desk with every agent logged out, for a new epoch (this start's Unix
    /// milliseconds), its state timeline written straight to the store. Returns the orders
    /// the dispatcher must carry out.
    pub fn start(
        config: DeskConfig,
        tz: chrono_tz::Tz,
        roster: &Roster,
        store: Store,
    ) -> (Desktops, mpsc::UnboundedReceiver<DeskOrder>, DesktopTasks) {
        Desktops::start_journaled(config, tz, roster, store, None)
    }

    /// [`Desktops::start`], the state timeline going through `journal` when given (as the
    /// daemon runs it): a change made while PostgreSQL is down reaches the timeline once it
    /// is back.
    pub fn start_journaled(
        config: DeskConfig,
        tz: chrono_tz::Tz,
        roster: &Roster,
        store: Store,
        journal: Option<CallJournal>,
    ) -> (Desktops, mpsc::UnboundedReceiver<DeskOrder>, DesktopTasks) {
        let wall = unix_ms(SystemTime::now());
        let epoch = wall as u64;
        let desk = Desk::new(Arc::new(config), tz, roster, epoch, Instant::now(), wall);
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let (writes, writes_rx) = mpsc::unbounded_channel();
        let desktops = Desktops {
            inner: Arc::new(Inner {
                desk: Mutex::new(desk),
                wakers: Mutex::new(HashMap::new()),
                rearm: Notify::new(),
                orders,
                writes,
                timeline: journal,
            }),
        };
        let timers = tokio::spawn(desktops.clone().run_timers());
        let writer = tokio::spawn(write_loop(store, writes_rx, desktops.ticket_changes()));
        let tasks = DesktopTasks {
            timers,
            writer,
            reload: None,
        };
        (desktops, orders_rx, tasks)
    }

    /// [`Desktops::start`] on the daemon's configuration, following its reloads: agents
    /// added start logged out, agents removed are logged out and their desktops closed.
    pub fn start_with(
        mut config: watch::Receiver<Arc<Config>>,
        store: Store,
        journal: CallJournal,
    ) -> Result<(Desktops, mpsc::UnboundedReceiver<DeskOrder>, DesktopTasks), String> {
        let current = config.borrow_and_update().clone();
        let tz = current.daemon.tz()?;
        let (desktops, orders, mut tasks) = Desktops::start_journaled(
            current.desk.clone(),
            tz,
            &roster(&current.acd),
            store,
            Some(journal),
        );
        let following = desktops.clone();
        tasks.reload = Some(tokio::spawn(async move {
            while config.changed().await.is_ok() {
                let config = config.borrow_and_update().clone();
                following.with_desk(|desk, now| {
                    desk.reconfigure(Arc::new(config.desk.clone()), &roster(&config.acd), now)
                });
            }
        }));
        Ok((desktops, orders, tasks))
    }

    fn desk(&self) -> MutexGuard<'_, Desk<ScreenPop>> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.inner.desk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the desk at `Instant::now()`, then what became due, and carries out the
    /// actions.
    fn with_desk<T>(&self, f: impl FnOnce(&mut Desk<ScreenPop>, Instant) -> T) -> T {
        let now = Instant::now();
        let (result, actions, epoch) = {
            let mut desk = self.desk();
            let result = f(&mut desk, now);
            desk.poll(now);
            (result, desk.take_actions(), desk.epoch())
        };
        self.carry_out(actions, epoch);
        self.inner.rearm.notify_one();
        result
    }

    fn carry_out(&self, actions: Vec<DeskAction>, epoch: u64) {
        for action in actions {
            match action {
                DeskAction::Wake(sub) => {
                    let wakers = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(notify) = wakers.get(&sub) {
                        notify.notify_one();
                    }
                }
                DeskAction::Availability { agent, ready } => {
                    let _ = self
                        .inner
                        .orders
                        .send(DeskOrder::Availability { agent, ready });
                }
                DeskAction::Control {
                    call,
                    agent,
                    control,
                } => {
                    let _ = self.inner.orders.send(DeskOrder::Control {
                        call,
                        agent,
                        control,
                    });
                }
                DeskAction::Timeline {
                    agent,
                    from,
                    to,
                    version,
                    at_ms,
                } => {
                    let (from_state, from_reason) = state_code(&from);
                    let (to_state, reason_code) = state_code(&to);
                    let record = StateChangeRecord {
                        agent_id: agent,
                        epoch: epoch as i64,
                        version: version as i64,
                        from_state,
                        from_reason,
                        to_state,
                        reason_code,
                        at: DateTime::from_timestamp_millis(at_ms).unwrap_or_else(Utc::now),
                    };
                    match &self.inner.timeline {
                        Some(journal) => {
                            let key = agent_journal_key(&record.agent_id);
                            journal.record(&key, CallEntry::AgentState(record));
                        }
                        None => {
                            let _ = self.inner.writes.send(StoreWrite::Timeline(record));
                        }
                    }
                }
                DeskAction::Disposition {
                    call,
                    agent,
                    code,
                    notes,
                } => {
                    let _ = self.inner.writes.send(StoreWrite::Disposition {
                        call,
                        agent,
                        code,
                        notes,
                    });
                }
            }
        }
    }

    async fn run_timers(self) {
        loop {
            let next = self.desk().next_deadline();
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = self.inner.rearm.notified() => continue,
                    }
                }
                None => {
                    self.inner.rearm.notified().await;
                    continue;
                }
            }
            self.with_desk(|_, _| ());
        }
    }

    /// The hook for ticket writes (see [`TicketChanges`]).
    pub fn ticket_changes(&self) -> TicketChanges {
        TicketChanges {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// A call event from the call layer.
    pub fn feed(&self, input: DeskInput<ScreenPop>) {
        self.with_desk(|desk, now| desk.handle(input, now));
    }

    pub fn set_state(
        &self,
        agent: &str,
        requested: Requested,
        expected_version: Option<u64>,
    ) -> Result<AgentView, DeskError> {
        self.with_desk(|desk, now| desk.set_state(agent, requested, expected_version, now))
    }

    pub fn extend_wrap_up(&self, agent: &str, secs: u64) -> Result<i64, DeskError> {
        self.with_desk(|desk, now| desk.extend_wrap_up(agent, secs, now))
    }

    pub fn complete_wrap_up(&self, agent: &str, code: &str, notes: &str) -> Result<(), DeskError> {
        self.with_desk(|desk, now| desk.complete_wrap_up(agent, code, notes, now))
    }

    pub fn control(&self, agent: &str, call: &str, control: CallControl) -> Result<(), DeskError> {
        self.with_desk(|desk, _| desk.control(agent, call, control))
    }

    pub fn view(&self, agent: &str) -> Result<AgentView, DeskError> {
        self.desk().view(agent)
    }

    pub fn agents(&self) -> Vec<AgentView> {
        self.desk().agents()
    }

    /// The lanes (calls waiting, longest wait) and the agents by state, now.
    pub fn board(&self) -> (Vec<LaneBoard>, AgentsByState) {
        let desk = self.desk();
        (desk.lane_boards(Instant::now()), desk.agents_by_state())
    }

    /// The call's queue, priority, leak flag and wait so far, for its screen pop.
    pub fn live_call(&self, call: &str) -> Option<(LiveCall, std::time::Duration)> {
        self.desk().live_call(call, Instant::now())
    }

    pub fn live_calls(&self) -> Vec<LiveCall> {
        self.desk().live_calls()
    }

    /// Whether `code` is a reason code agents may choose.
    pub fn is_reason_code(&self, code: &str) -> bool {
        self.desk().config().is_reason_code(code)
    }

    fn subscription(&self, sub: SubId) -> Subscription {
        let notify = Arc::new(Notify::new());
        // The initial items are already waiting.
        notify.notify_one();
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sub, notify.clone());
        Subscription {
            desktops: self.clone(),
            sub,
            notify,
            ended: false,
        }
    }

    /// A desktop's stream of `agent`'s events (see `desk` for resume).
    pub fn subscribe_agent(
        &self,
        agent: &str,
        resume_from: Option<(u64, u64)>,
    ) -> Result<Subscription, DeskError> {
        let sub = self.with_desk(|desk, now| desk.subscribe_agent(agent, resume_from, now))?;
        Ok(self.subscription(sub))
    }

    pub fn subscribe_wallboard(&self) -> Subscription {
        let sub = self.with_desk(|desk, now| desk.subscribe_wallboard(now));
        self.subscription(sub)
    }
}

/// One stream's subscription; dropping it unsubscribes.
pub struct Subscription {
    desktops: Desktops,
    sub: SubId,
    notify: Arc<Notify>,
    ended: bool,
}

impl Subscription {
    /// The next items, waiting for some; `None` once the desk closed the stream.
    pub async fn next_batch(&mut self) -> Option<Vec<StreamItem<ScreenPop>>> {
        loop {
            if self.ended {
                return None;
            }
            let drained = self.desktops.desk().drain(self.sub);
            self.ended = drained.closed;
            if !drained.items.is_empty() {
                return Some(drained.items);
            }
            if self.ended {
                return None;
            }
            self.notify.notified().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.desktops
            .inner
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.sub);
        let sub = self.sub;
        self.desktops
            .with_desk(|desk, now| desk.unsubscribe(sub, now));
    }
}

async fn write_loop(
    store: Store,
    mut writes: mpsc::UnboundedReceiver<StoreWrite>,
    tickets: TicketChanges,
) {
    while let Some(write) = writes.recv().await {
        match write {
            StoreWrite::Timeline(record) => {
                if let Err(error) = store.record_state_change(&record).await {
                    tracing::warn!(%error, agent = %record.agent_id, to = %record.to_state,
                        "agent state change not stored in the timeline");
                }
            }
            StoreWrite::Disposition {
                call,
                agent,
                code,
                notes,
            } => match store.record_disposition(&call, &agent, &code, &notes).await {
                Ok(Some(draft)) => tickets.changed(&call, &draft.number, &draft.status),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, %call, %agent, "wrap-up disposition not stored")
                }
            },
        }
    }
}
