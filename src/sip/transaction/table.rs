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

use super::{ClientKey, ClientTransaction, ServerInvite, ServerKey, ServerNonInvite};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// A server transaction of either kind.
#[derive(Debug)]
pub enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerTx {
    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            ServerTx::Invite(t) => t.next_deadline(),
            ServerTx::NonInvite(t) => t.next_deadline(),
        }
    }

    pub fn is_terminated(&self) -> bool {
        match self {
            ServerTx::Invite(t) => t.is_terminated(),
            ServerTx::NonInvite(t) => t.is_terminated(),
        }
    }

    pub fn peer(&self) -> super::Peer {
        match self {
            ServerTx::Invite(t) => t.peer,
            ServerTx::NonInvite(t) => t.peer,
        }
    }
}

/// Names one transaction in the timer set. Ordered, so that transactions due at the same
/// instant always fire in the same order (runs are reproducible).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxKey {
    Server(ServerKey),
    Client(ClientKey),
}

#[derive(Debug)]
pub struct ServerEntry<S> {
    pub tx: ServerTx,
    pub owner: S,
    scheduled: Option<Instant>,
}

#[derive(Debug)]
pub struct ClientEntry<C> {
    pub tx: ClientTransaction,
    pub owner: C,
    scheduled: Option<Instant>,
}

#[derive(Debug)]
pub struct TransactionTable<S, C> {
    server: HashMap<ServerKey, ServerEntry<S>>,
    client: HashMap<ClientKey, ClientEntry<C>>,
    /// (deadline, transaction) for every transaction with a pending timer.
    timers: BTreeSet<(Instant, TxKey)>,
}

impl<S, C> Default for TransactionTable<S, C> {
    fn default() -> Self {
        TransactionTable {
            server: HashMap::new(),
            client: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }
}

/// Moves `key`'s entry in the timer set from `scheduled` to `deadline`.
fn reschedule(
    timers: &mut BTreeSet<(Instant, TxKey)>,
    scheduled: &mut Option<Instant>,
    deadline: Option<Instant>,
    key: TxKey,
) {
    if *scheduled == deadline {
        return;
    }
    if let Some(old) = scheduled.take() {
        timers.remove(&(old, key.clone()));
    }
    if let Some(new) = deadline {
        timers.insert((new, key));
        *scheduled = Some(new);
    }
}

impl<S, C> TransactionTable<S, C> {
    pub fn server_count(&self) -> usize {
        self.server.len()
    }

    pub fn client_count(&self) -> usize {
        self.client.len()
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
                TxKey::Server(k) => {
                    if let Some(e) = self.server.get_mut(k) {
                        e.scheduled = None;
                    }
                }
                TxKey::Client(k) => {
                    if let Some(e) = self.client.get_mut(k) {
                        e.scheduled = None;
                    }
                }
            }
            due.push(key);
        }
        due
    }

    pub fn server(&self, key: &ServerKey) -> Option<&ServerEntry<S>> {
        self.server.get(key)
    }

    pub fn client(&self, key: &ClientKey) -> Option<&ClientEntry<C>> {
        self.client.get(key)
    }

    /// Adds (or replaces) a server transaction that has already sent its first response.
    pub fn insert_server(&mut self, key: ServerKey, tx: ServerTx, owner: S) {
        self.remove_server(&key);
        self.server.insert(
            key.clone(),
            ServerEntry {
                tx,
                owner,
                scheduled: None,
            },
        );
        self.update_server(&key, |_| ());
    }

    /// Adds (or replaces) a client transaction that has already sent its request.
    pub fn insert_client(&mut self, key: ClientKey, tx: ClientTransaction, owner: C) {
        self.remove_client(&key);
        self.client.insert(
            key.clone(),
            ClientEntry {
                tx,
                owner,
                scheduled: None,
            },
        );
        self.update_client(&key, |_| ());
    }

    /// Runs `change` on a server transaction, then reschedules it, or forgets it when it
    /// has terminated. `None` when there is no such transaction.
    pub fn update_server<R>(
        &mut self,
        key: &ServerKey,
        change: impl FnOnce(&mut ServerEntry<S>) -> R,
    ) -> Option<R> {
        let entry = self.server.get_mut(key)?;
        let result = change(entry);
        if entry.tx.is_terminated() {
            self.remove_server(key);
        } else {
            let deadline = entry.tx.next_deadline();
            let server_key = TxKey::Server(key.clone());
            reschedule(&mut self.timers, &mut entry.scheduled, deadline, server_key);
        }
        Some(result)
    }

    /// Runs `change` on a client transaction, then reschedules or forgets it.
    pub fn update_client<R>(
        &mut self,
        key: &ClientKey,
        change: impl FnOnce(&mut ClientEntry<C>) -> R,
    ) -> Option<R> {
        let entry = self.client.get_mut(key)?;
        let result = change(entry);
        if entry.tx.is_terminated() {
            self.remove_client(key);
        } else {
            let deadline = entry.tx.next_deadline();
            let client_key = TxKey::Client(key.clone());
            reschedule(&mut self.timers, &mut entry.scheduled, deadline, client_key);
        }
        Some(result)
    }

    fn remove_server(&mut self, key: &ServerKey) {
        if let Some(entry) = self.server.remove(key)
            && let Some(at) = entry.scheduled
        {
            self.timers.remove(&(at, TxKey::Server(key.clone())));
        }
    }

    fn remove_client(&mut self, key: &ClientKey) {
        if let Some(entry) = self.client.remove(key)
            && let Some(at) = entry.scheduled
        {
            self.timers.remove(&(at, TxKey::Client(key.clone())));
        }
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
