//! The call journal: every database write a call causes (the call row, its draft ticket and
//! their updates) goes through here, in order, to one writer task. Calls never wait for the
//! database: [`CallJournal::write`] only queues. A failed write is logged with the call id
//! and dropped; the durable spool for database outages slots in behind this one type.
//!
//! Owns the order and the SQL side of call records; must not decide what a call records
//! (the call dispatcher does).

use crate::store::{CallUpdate, NewCall, NewTicket, Store, StoreError, TicketPatch};
use crate::tickets::Category;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Who the ticket changes are attributed to in the audit trail.
pub const JOURNAL_ACTOR: &str = "ivr";

/// One write a call asks for.
#[derive(Debug)]
pub enum JournalEntry {
    /// The call arrived: its row (needed before the ticket, which refers to it).
    CallArrived(NewCall),
    CallUpdated {
        call_id: String,
        update: CallUpdate,
    },
    /// The call's draft ticket; `request_id` must be `call:<call id>` so a retry finds it.
    DraftTicket {
        call_id: String,
        ticket: NewTicket,
    },
    /// The caller's choice (or the leak key) set the ticket's category.
    TicketCategory {
        call_id: String,
        category: Category,
        priority: Option<i32>,
    },
    /// A line for the ticket's description (an entry the caller keyed, e.g. the account).
    TicketNote {
        call_id: String,
        note: String,
    },
    /// The call is over: nothing more will be written for it.
    CallClosed {
        call_id: String,
    },
    /// Answers once every entry queued before it was written (tests, shutdown).
    Flush(oneshot::Sender<()>),
}

/// The writer's queue. Cheap to clone; the writer task ends when every clone is dropped,
/// after writing what was queued.
#[derive(Debug, Clone)]
pub struct CallJournal {
    entries: mpsc::UnboundedSender<JournalEntry>,
}

impl CallJournal {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> (CallJournal, JoinHandle<()>) {
        let (entries, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(Writer::new(store).run(queue));
        (CallJournal { entries }, task)
    }

    /// Queues a write; never blocks.
    pub fn write(&self, entry: JournalEntry) {
        if self.entries.send(entry).is_err() {
            tracing::error!("the call journal writer has stopped; a call record is lost");
        }
    }

    /// Waits until everything queued so far is written (or failed and logged).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        self.write(JournalEntry::Flush(done));
        let _ = wait.await;
    }
}

/// `call:<id>`, the draft ticket's idempotency key.
pub fn draft_request_id(call_id: &str) -> String {
    format!("call:{call_id}")
}

struct Writer {
    store: Store,
    /// Each open call's draft, for later updates.
    tickets: HashMap<String, Draft>,
}

struct Draft {
    number: String,
    description: String,
}

impl Writer {
    fn new(store: Store) -> Writer {
        Writer {
            store,
            tickets: HashMap::new(),
        }
    }

    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<JournalEntry>) {
        while let Some(entry) = queue.recv().await {
            self.apply(entry).await;
        }
    }

    async fn apply(&mut self, entry: JournalEntry) {
        let (call_id, what, result) = match entry {
            JournalEntry::Flush(done) => {
                let _ = done.send(());
                return;
            }
            JournalEntry::CallClosed { call_id } => {
                self.tickets.remove(&call_id);
                return;
            }
            JournalEntry::CallArrived(call) => {
                let result = self.store.record_call(&call).await;
                (call.call_id, "recording the call", result)
            }
            JournalEntry::CallUpdated { call_id, update } => {
                let result = self.store.update_call(&call_id, &update).await;
                (call_id, "updating the call", result)
            }
            JournalEntry::DraftTicket { call_id, ticket } => {
                let result = self.store.create_ticket(&ticket).await.map(|(ticket, _)| {
                    let draft = Draft {
                        number: ticket.number,
                        description: ticket.description,
                    };
                    self.tickets.insert(call_id.clone(), draft);
                });
                (call_id, "creating the draft ticket", result)
            }
            JournalEntry::TicketCategory {
                call_id,
                category,
                priority,
            } => {
                let patch = TicketPatch {
                    category: Some(category),
                    priority,
                    ..TicketPatch::default()
                };
                let result = self.update_draft(&call_id, &patch).await;
                (call_id, "setting the ticket category", result)
            }
            JournalEntry::TicketNote { call_id, note } => {
                let result = match self.tickets.get(&call_id) {
                    Some(draft) => {
                        let patch = TicketPatch {
                            description: Some(format!("{}\n{note}", draft.description)),
                            ..TicketPatch::default()
                        };
                        self.update_draft(&call_id, &patch).await
                    }
                    None => Err(no_draft(&call_id)),
                };
                (call_id, "noting a caller entry on the ticket", result)
            }
        };
        if let Err(error) = result {
            tracing::warn!(call = %call_id, %error, "call journal: {what} failed");
        }
    }

    async fn update_draft(&mut self, call_id: &str, patch: &TicketPatch) -> Result<(), StoreError> {
        let Some(draft) = self.tickets.get_mut(call_id) else {
            return Err(no_draft(call_id));
        };
        let updated = self
            .store
            .update_ticket(&draft.number, None, patch, JOURNAL_ACTOR)
            .await?;
        draft.description = updated.description;
        Ok(())
    }
}

fn no_draft(call_id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "draft ticket of call {call_id} (its creation failed)"
    ))
}
