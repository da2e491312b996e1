//! The transaction table: every live server and client transaction by its key, with their
//! timers in one deadline-ordered set, so the next timeout is the set's first entry and a
//! timeout visits only the transactions that are due — never a scan over all of them.
//!
//! Every change to a transaction goes through [`TransactionTable::update_server`] or
//! [`TransactionTable::update_client`], which reschedule it and forget it once it has
//! terminated; so the set is exact (no stale entries) and nothing lingers.
//!
//! Owns the transactions and their schedule; must not decide what to answer, nor know what
//! the owner payload (`S`, `C`: e.g. the call a transaction belongs to) means.

use super::{ClientKey, ClientTransaction, Peer, ServerInvite, ServerKey, ServerNonInvite};
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// What the table needs to know of a transaction to schedule and forget it.
pub trait Scheduled {
    fn next_deadline(&self) -> Option<Instant>;
    fn is_terminated(&self) -> bool;
}

/// A server transaction of either kind.
#[derive(Debug)]
pub enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerTx {
    pub fn peer(&self) -> Peer {
        match self {
            ServerTx::Invite(t) => t.peer,
            ServerTx::NonInvite(t) => t.peer,
        }
    }
}

impl Scheduled for ServerTx {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            ServerTx::Invite(t) => t.next_deadline(),
            ServerTx::NonInvite(t) => t.next_deadline(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            ServerTx::Invite(t) => t.is_terminated(),
            ServerTx::NonInvite(t) => t.is_terminated(),
        }
    }
}

impl Scheduled for ClientTransaction {
    fn next_deadline(&self) -> Option<Instant> {
        ClientTransaction::next_deadline(self)
    }

    fn is_terminated(&self) -> bool {
        ClientTransaction::is_terminated(self)
    }
}

/// Names one transaction in the timer set. Ordered, so that transactions due at the same
/// instant always fire in the same order (runs are reproducible).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxKey {
    Server(ServerKey),
    Client(ClientKey),
}

/// One transaction, the owner's note on it, and where it sits in the timer set.
#[derive(Debug)]
pub struct Entry<T, O> {
    pub tx: T,
    pub owner: O,
    scheduled: Option<Instant>,
}

type Timers = BTreeSet<(Instant, TxKey)>;

/// The transactions of one side, keyed by `K`, with `TxKey` naming them in the timer set.
#[derive(Debug)]
struct Side<K, T, O> {
    entries: HashMap<K, Entry<T, O>>,
    name: fn(K) -> TxKey,
}

impl<K: Eq + Hash + Clone, T: Scheduled, O> Side<K, T, O> {
    fn new(name: fn(K) -> TxKey) -> Self {
        Side {
            entries: HashMap::new(),
            name,
        }
    }

    fn insert(&mut self, timers: &mut Timers, key: K, tx: T, owner: O) {
        self.remove(timers, &key);
        let entry = Entry {
            tx,
            owner,
            scheduled: None,
        };
        self.entries.insert(key.clone(), entry);
        self.update(timers, &key, |_| ());
    }

    /// Runs `change`, then moves the transaction in the timer set to its new deadline, or
    /// forgets it when it has terminated.
    fn update<R>(
        &mut self,
        timers: &mut Timers,
        key: &K,
        change: impl FnOnce(&mut Entry<T, O>) -> R,
    ) -> Option<R> {
        let entry = self.entries.get_mut(key)?;
        let result = change(entry);
        let terminated = entry.tx.is_terminated();
        let deadline = entry.tx.next_deadline().filter(|_| !terminated);
        if entry.scheduled != deadline {
            let name = (self.name)(key.clone());
            if let Some(old) = entry.scheduled.take() {
                timers.remove(&(old, name.clone()));
            }
            if let Some(new) = deadline {
                timers.insert((new, name));
                entry.scheduled = Some(new);
            }
        }
        if terminated {
            self.entries.remove(key);
        }
        Some(result)
    }

    fn remove(&mut self, timers: &mut Timers, key: &K) {
        if let Some(entry) = self.entries.remove(key)
            && let Some(at) = entry.scheduled
        {
            timers.remove(&(at, (self.name)(key.clone())));
        }
    }

    /// Notes that the transaction's timer was taken off the set.
    fn unschedule(&mut self, key: &K) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.scheduled = None;
        }
    }
}

/// Server transactions with owner note `S`, client ones with `C`.
#[derive(Debug)]
pub struct TransactionTable<S, C> {
    server: Side<ServerKey, ServerTx, S>,
    client: Side<ClientKey, ClientTransaction, C>,
    /// (deadline, transaction) for every transaction with a pending timer.
    timers: Timers,
}

impl<S, C> Default for TransactionTable<S, C> {
    fn default() -> Self {
        TransactionTable {
            server: Side::new(TxKey::Server),
            client: Side::new(TxKey::Client),
            timers: BTreeSet::new(),
        }
    }
}

impl<S, C> TransactionTable<S, C> {
    pub fn server_count(&self) -> usize {
        self.server.entries.len()
    }

    pub fn client_count(&self) -> usize {
        self.client.entries.len()
    }

    /// The earliest pending timer of any transaction.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Takes the transactions due at `now` off the schedule, earliest first. Each is due
    /// once per call: the caller runs its timeout through `update_*`, which schedules it
    /// again.
    pub fn due(&mut self, now: Instant) -> Vec<TxKey> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.timers.first()
            && *at <= now
        {
            let Some((_, key)) = self.timers.pop_first() else {
                break;
            };
            match &key {
                TxKey::Server(k) => self.server.unschedule(k),
                TxKey::Client(k) => self.client.unschedule(k),
            }
            due.push(key);
        }
        due
    }

    pub fn server(&self, key: &ServerKey) -> Option<&Entry<ServerTx, S>> {
        self.server.entries.get(key)
    }

    pub fn client(&self, key: &ClientKey) -> Option<&Entry<ClientTransaction, C>> {
        self.client.entries.get(key)
    }

    /// Adds (or replaces) a server transaction that has already sent its first response.
    pub fn insert_server(&mut self, key: ServerKey, tx: ServerTx, owner: S) {
        self.server.insert(&mut self.timers, key, tx, owner);
    }

    /// Adds (or replaces) a client transaction that has already sent its request.
    pub fn insert_client(&mut self, key: ClientKey, tx: ClientTransaction, owner: C) {
        self.client.insert(&mut self.timers, key, tx, owner);
    }

    /// Runs `change` on a server transaction, then reschedules it, or forgets it when it
    /// has terminated. `None` when there is no such transaction.
    pub fn update_server<R>(
        &mut self,
        key: &ServerKey,
        change: impl FnOnce(&mut Entry<ServerTx, S>) -> R,
    ) -> Option<R> {
        self.server.update(&mut self.timers, key, change)
    }

    /// Runs `change` on a client transaction, then reschedules or forgets it.
    pub fn update_client<R>(
        &mut self,
        key: &ClientKey,
        change: impl FnOnce(&mut Entry<ClientTransaction, C>) -> R,
    ) -> Option<R> {
        self.client.update(&mut self.timers, key, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::*;
    use std::time::Duration;

    fn answered_options(
        table: &mut TransactionTable<(), ()>,
        branch: &str,
        now: Instant,
    ) -> ServerKey {
        let mut req = request("OPTIONS");
        req.remove_header("Via");
        req.push_header("Via", format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"));
        let key = ServerKey::for_request(&req);
        let mut tx = ServerNonInvite::new(udp(), timers());
        tx.respond(&response(&req, 200), now, &mut Vec::new());
        table.insert_server(key.clone(), ServerTx::NonInvite(tx), ());
        key
    }

    #[test]
    fn next_timeout_is_the_earliest_and_due_takes_only_what_is_due() {
        let t0 = Instant::now();
        let mut table = TransactionTable::<(), ()>::default();
        let late = answered_options(&mut table, "z9hG4bKlate", t0 + Duration::from_secs(1));
        let early = answered_options(&mut table, "z9hG4bKearly", t0);
        let timer_j = Duration::from_secs(32);
        assert_eq!(table.next_timeout(), Some(t0 + timer_j));
        assert_eq!(table.due(t0 + timer_j), vec![TxKey::Server(early.clone())]);
        assert_eq!(table.due(t0 + timer_j), vec![], "taken off the schedule");
        table.update_server(&early, |e| match &mut e.tx {
            ServerTx::NonInvite(tx) => tx.on_timeout(t0 + timer_j),
            ServerTx::Invite(_) => unreachable!(),
        });
        assert!(table.server(&early).is_none(), "terminated: forgotten");
        assert_eq!(table.server_count(), 1);
        assert_eq!(
            table.next_timeout(),
            Some(t0 + Duration::from_secs(1) + timer_j)
        );
        assert!(table.server(&late).is_some());
    }

    #[test]
    fn replacing_a_transaction_drops_its_old_timer() {
        let t0 = Instant::now();
        let mut table = TransactionTable::<(), ()>::default();
        answered_options(&mut table, "z9hG4bKsame", t0);
        answered_options(&mut table, "z9hG4bKsame", t0 + Duration::from_secs(5));
        assert_eq!(table.server_count(), 1);
        assert_eq!(
            table.next_timeout(),
            Some(t0 + Duration::from_secs(37)),
            "only the replacement's Timer J"
        );
    }
}
