//! Calls: the layer that makes `hotlined` answer the phone. It joins the SIP service, the
//! media sessions, one IVR engine per call, the ACD and the ticket store.
//!
//! One dispatcher task owns every call's state (IVR engine, port lease, media link, timers,
//! outgoing legs) and the one ACD. One task rather than a task per call because the ACD is
//! shared by every call and is sans-IO: with one owner its actions (offer this call to that
//! agent, overflow that call) apply to the call state directly, without locks or a second
//! message protocol between call tasks and an ACD task; and every core it drives is sans-IO,
//! so the task never waits on anything but its channels and the nearest timer. Media I/O
//! runs in the media sessions' own tasks, database writes in the call journal's writer
//! ([`crate::store::CallJournal`]: spooled to disk while PostgreSQL is down), and the
//! caller look-up (customer file, open tickets) in a short-lived task with a timeout, so a
//! slow or absent database never holds a call up.
//!
//! The parts: `dispatcher` (the task's loop and its one work queue, with the call flow, the
//! outgoing legs and shutdown beneath it), `registry` (the calls and legs, keyed by the SIP
//! [`CallHandle`](crate::sip::CallHandle), which the ACD uses as its call key too), `timers`
//! (deadline-ordered, a set per call), `lookup`, `journal` (call events → the store's
//! records), [`acd_link`] (IVR ↔ ACD), `media_link`, [`desk`](AgentDesk) (the handle the
//! API holds), `survey` (the survey ratings published for the desk, and its
//! `TransferToSurvey`) and [`reload`].
//!
//! Public entry points: [`CallStack::start`] (with a [`Reloader`]'s receiver and a store),
//! [`CallStack::counts`], [`CallStack::set_agent_state`], [`CallStack::agent_desk`],
//! [`CallStack::shutdown`], and [`Reloader::reload`] for SIGHUP / the admin API.
//!
//! Owns the wiring between the cores; must not make their decisions (menus: `ivr`, who
//! answers: `acd`, SIP: `sip`, audio: `media`, SQL: `store`).

pub mod acd_link;
mod desk;
mod desk_link;
mod desktops;
mod dispatcher;
mod journal;
mod lookup;
mod media_link;
mod metrics_source;
mod pops;
mod registry;
pub mod reload;
mod survey;
mod timers;

pub use desk::{AgentDesk, AgentDeskError, AgentView};
pub use desktops::{DeskOrder, DesktopTasks, Desktops, Subscription, TicketChanges};
pub use metrics_source::CallMetrics;
pub use reload::Reloader;
use survey::SurveyResults;
pub use survey::{SurveyRated, TransferToSurveyError};

use crate::acd::ReportedState;
use crate::config::Config;
use crate::media::ports::PortPool;
use crate::media::prompts::PromptLibrary;
use crate::sip::transport::{self, TransportCounts};
use crate::store::{CallJournal, JournalError, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How long shutdown waits for the last call records to reach PostgreSQL.
const JOURNAL_DRAIN: Duration = Duration::from_secs(5);

/// Live object counts: all zero (SIP transactions aside, which linger for their timers)
/// when no call is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveCounts {
    /// Incoming calls the dispatcher tracks.
    pub calls: usize,
    /// Calls we placed (agents, transfer targets).
    pub outgoing_legs: usize,
    pub media_sessions: usize,
    pub port_leases: usize,
    /// IVR and ACD timers pending.
    pub timers: usize,
    pub sip: TransportCounts,
}

/// Where [`LiveCounts`] are read from (for [`CallStack::counts`] and the metrics).
#[derive(Clone)]
struct LiveSources {
    dispatcher: watch::Receiver<DispatcherCounts>,
    sip: watch::Receiver<TransportCounts>,
    media_sessions: Arc<AtomicUsize>,
    pool: PortPool,
}

impl LiveSources {
    fn counts(&self) -> LiveCounts {
        let own = *self.dispatcher.borrow();
        LiveCounts {
            calls: own.calls,
            outgoing_legs: own.outgoing_legs,
            media_sessions: self.media_sessions.load(Ordering::SeqCst),
            port_leases: self.pool.live_count(),
            timers: own.timers,
            sip: *self.sip.borrow(),
        }
    }
}

/// What the dispatcher publishes after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct DispatcherCounts {
    calls: usize,
    outgoing_legs: usize,
    timers: usize,
}

/// Requests from outside the dispatcher.
enum Control {
    AgentState {
        agent: String,
        state: ReportedState,
        /// The agent as the ACD sees it afterwards.
        reply: Option<oneshot::Sender<Result<AgentView, AgentDeskError>>>,
    },
    ListAgents {
        reply: oneshot::Sender<Vec<AgentView>>,
    },
    /// The desk's `TransferToSurvey` (see [`AgentDesk::transfer_to_survey`]).
    TransferToSurvey {
        call_id: String,
        agent: String,
        reply: oneshot::Sender<Result<(), TransferToSurveyError>>,
    },
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

/// Why the call stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sip(#[from] transport::TransportError),
    #[error("media.rtp_port_min/max: {0}")]
    Ports(#[from] crate::media::ports::PortError),
    #[error("media.sounds_dir: {0}")]
    Prompts(#[from] crate::media::prompts::PromptError),
    #[error("tickets: {0}")]
    Rules(#[from] crate::tickets::config::RulesConfigError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("daemon.time_zone: {0}")]
    TimeZone(String),
    #[error("media.recordings_dir {dir}: {source}; create the folder or choose another")]
    Recordings {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The running call handling: SIP service, dispatcher and journal writer.
pub struct CallStack {
    sip_addr: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
    counts: watch::Receiver<DispatcherCounts>,
    sip_counts: watch::Receiver<TransportCounts>,
    sip_stats: watch::Receiver<crate::sip::stats::SipStats>,
    media_sessions: Arc<AtomicUsize>,
    pool: PortPool,
    journal: CallJournal,
    survey_results: SurveyResults,
    dispatcher: JoinHandle<()>,
    writer: JoinHandle<()>,
    stop_writer: oneshot::Sender<()>,
    sip_task: JoinHandle<()>,
    desktops: Desktops,
    desk_tasks: DesktopTasks,
}

impl CallStack {
    /// Binds SIP (`sip.listen`), loads the prompts, repairs recordings a crash left open and
    /// starts taking calls with whatever configuration `config` holds at each call's arrival.
    pub async fn start(
        config: watch::Receiver<Arc<Config>>,
        store: Store,
    ) -> Result<CallStack, StartError> {
        let initial = config.borrow().clone();
        let media = &initial.media;
        crate::files::create_private_dir(&media.recordings_dir).map_err(|source| {
            StartError::Recordings {
                dir: media.recordings_dir.clone(),
                source,
            }
        })?;
        match crate::media::recorder::repair_unfinished(&media.recordings_dir) {
            Ok(report) => {
                for path in &report.repaired {
                    tracing::warn!(file = %path.display(), "recording left open by a crash: repaired");
                }
                for (path, why) in &report.skipped {
                    tracing::warn!(file = %path.display(), why, "damaged recording left as it is");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot check the recordings folder"),
        }
        let prompts = Arc::new(PromptLibrary::load(&media.sounds_dir)?);
        let pool = PortPool::from_config(media)?;
        if let Err(error) = crate::media::workers::start(media.realtime_priority) {
            tracing::error!(%error, "cannot start the media worker threads; calls will fail to start their media");
        }
        let sip = transport::spawn(&initial.sip).await?;
        let sip_addr = sip.local_addr;
        tracing::info!(address = %sip_addr, "SIP listening: taking calls");
        let rules = Arc::new(initial.rules()?);
        let (journal, writer) =
            CallJournal::open(&initial.daemon.spool_dir(), store.clone(), rules)?;
        // Metrics see each call record as it is made (dispositions, latencies, IVR nodes).
        journal.observe(Box::new(|call_id, entry| {
            crate::ops::metrics::global().on_call_entry(call_id, entry);
        }));
        let (desktops, desk_orders, desk_tasks) =
            Desktops::start_with(config.clone(), store.clone(), journal.clone())
                .map_err(StartError::TimeZone)?;
        // The call's own writes to its ticket (the survey rating, …) reach the agent's desktop.
        let tickets = desktops.ticket_changes();
        let writer = writer.on_ticket_written(Arc::new(move |call, ticket| {
            tickets.changed(call, &ticket.number, &ticket.status)
        }));
        let (stop_writer, writer_stopped) = oneshot::channel::<()>();
        let writer = tokio::spawn(writer.run(async {
            let _ = writer_stopped.await;
        }));
        let (control, control_rx) = mpsc::unbounded_channel();
        let (counts_tx, counts) = watch::channel(DispatcherCounts::default());
        let media_sessions = Arc::new(AtomicUsize::new(0));
        let sip_counts = sip.counts.clone();
        let sip_stats = sip.stats.clone();
        let sip_task_handle = sip.task;
        let survey_results = SurveyResults::new();
        let parts = dispatcher::Parts {
            config,
            sip_events: sip.events,
            sip_requests: sip.requests,
            pool: pool.clone(),
            prompts,
            store,
            journal: journal.clone(),
            control: control_rx,
            counts: counts_tx,
            media_sessions: media_sessions.clone(),
            desktops: desktops.clone(),
            desk_orders,
            survey_results: survey_results.clone(),
        };
        let dispatcher = tokio::spawn(dispatcher::run(parts));
        Ok(CallStack {
            sip_addr,
            control,
            counts,
            sip_counts,
            sip_stats,
            media_sessions,
            pool,
            journal,
            survey_results,
            dispatcher,
            writer,
            stop_writer,
            sip_task: sip_task_handle,
            desktops,
            desk_tasks,
        })
    }

    /// The address SIP listens on (the real port when `sip.listen` had port 0).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    pub fn counts(&self) -> LiveCounts {
        self.live().counts()
    }

    fn live(&self) -> LiveSources {
        LiveSources {
            dispatcher: self.counts.clone(),
            sip: self.sip_counts.clone(),
            media_sessions: self.media_sessions.clone(),
            pool: self.pool.clone(),
        }
    }

    /// What a metrics scrape reads from the call handling (calls in progress, queues, agents,
    /// the journal backlog, SIP totals); outlives the stack harmlessly.
    pub fn metrics_source(&self) -> CallMetrics {
        CallMetrics {
            live: self.live(),
            sip_stats: self.sip_stats.clone(),
            desktops: self.desktops.clone(),
            journal: self.journal.clone(),
        }
    }

    /// An agent reports in (available, busy, wrap-up, offline): the ACD rings only
    /// available agents. Agents start offline.
    pub fn set_agent_state(&self, agent: &str, state: ReportedState) {
        let _ = self.control.send(Control::AgentState {
            agent: agent.to_owned(),
            state,
            reply: None,
        });
    }

    /// The agents' desk for the admin API (SetAgentState, ListAgents).
    pub fn agent_desk(&self) -> AgentDesk {
        AgentDesk::new(self.control.clone(), self.survey_results.clone())
    }

    /// The agents' desktops (`hotline.v1.AgentDesk`).
    pub fn desktops(&self) -> Desktops {
        self.desktops.clone()
    }

    /// The call journal, e.g. to wait for a call's records (`flush`).
    pub fn journal(&self) -> &CallJournal {
        &self.journal
    }

    /// New calls get 503; calls in progress may go on for `grace`, then are hung up; then
    /// media, SIP and the journal stop. Records still waiting are written if PostgreSQL
    /// answers within [`JOURNAL_DRAIN`], else left in the spool for the next start.
    pub async fn shutdown(self, grace: Duration) {
        let (done, finished) = oneshot::channel();
        if self.control.send(Control::Shutdown { grace, done }).is_ok() {
            let _ = finished.await;
        }
        let _ = self.dispatcher.await;
        self.desk_tasks.abort();
        if tokio::time::timeout(JOURNAL_DRAIN, self.journal.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "PostgreSQL did not take the last call records; they stay in the spool for the next start"
            );
        }
        let _ = self.stop_writer.send(());
        let _ = self.writer.await;
        let _ = self.sip_task.await;
        tracing::info!("call handling stopped");
    }
}
