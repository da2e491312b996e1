//! Subscribers: desktops' and wallboards' streams — the first items (snapshot, replay or
//! resync), delivery into bounded outboxes, and wallboard messages at most once a second
//! per lane.

use super::*;

impl<P> Desk<P> {
    /// Queues `item` for `sub`; a full outbox is replaced by ResyncRequired(TooSlow) and
    /// closed.
    pub(super) fn deliver(&mut self, sub: SubId, item: StreamItem<P>, now: Instant) {
        let capacity = self.config.subscriber_queue;
        let epoch = self.epoch;
        let at_ms = self.wall(now);
        let Some(s) = self.subscribers.get_mut(&sub) else {
            return;
        };
        let latest = match &s.topic {
            Topic::Agent(id) => self.agents.get(id).map_or(0, |a| a.history.latest()),
            Topic::Wallboard => 0,
        };
        if s.outbox.is_closed() {
            return;
        }
        s.outbox.push(item, capacity, || {
            StreamItem::Agent(AgentEvent {
                epoch,
                seq: latest,
                at_ms,
                kind: EventKind::ResyncRequired(ResyncReason::TooSlow),
            })
        });
        self.woken.insert(sub);
    }

    pub(super) fn snapshot(&self, agent: &str, now: Instant) -> Option<AgentEvent<P>> {
        let a = self.agents.get(agent)?;
        let call = a.current.as_ref().map(|c| {
            let phase = match c.phase {
                Phase::Ringing => CallPhase::Ringing,
                Phase::Talking { since } => CallPhase::Talking {
                    since_ms: self.wall(since),
                },
                Phase::WrapUp { deadline, .. } => CallPhase::WrapUp {
                    deadline_ms: self.wall(deadline),
                },
            };
            (c.offer.clone(), phase)
        });
        let snapshot = Snapshot {
            state: a.state.clone(),
            version: a.version,
            pending: a.pending.clone(),
            call,
        };
        Some(self.meta(agent, now, EventKind::Snapshot(Arc::new(snapshot))))
    }

    /// A per-subscriber event (not in the history) carrying the agent's latest seq.
    pub(super) fn meta(&self, agent: &str, now: Instant, kind: EventKind<P>) -> AgentEvent<P> {
        AgentEvent {
            epoch: self.epoch,
            seq: self.agents.get(agent).map_or(0, |a| a.history.latest()),
            at_ms: self.wall(now),
            kind,
        }
    }

    /// A desktop starts watching `agent`: a Snapshot first, or with `resume_from = (epoch,
    /// seq)` exactly the events after `seq` — or ResyncRequired then a Snapshot when those are
    /// no longer all held.
    pub fn subscribe_agent(
        &mut self,
        agent: &str,
        resume_from: Option<(u64, u64)>,
        now: Instant,
    ) -> Result<SubId, DeskError> {
        let a = self.agent(agent)?;
        let resume = resume_from.map(|(epoch, seq)| a.history.resume(self.epoch, epoch, seq));
        let mut initial = Vec::new();
        match resume {
            Some(Resume::Replay(events)) => {
                initial.extend(events.into_iter().map(StreamItem::Agent))
            }
            Some(Resume::Resync(reason)) => {
                initial.push(StreamItem::Agent(self.meta(
                    agent,
                    now,
                    EventKind::ResyncRequired(reason),
                )));
                initial.extend(self.snapshot(agent, now).map(StreamItem::Agent));
            }
            None => initial.extend(self.snapshot(agent, now).map(StreamItem::Agent)),
        }
        let sub = self.add_subscriber(Topic::Agent(agent.to_owned()), initial);
        if let Some(a) = self.agents.get_mut(agent) {
            a.desktops.insert(sub);
            a.unwatched_since = None;
        }
        self.agents_dirty = true;
        Ok(sub)
    }

    /// A supervisor's wallboard: a snapshot of every lane first, then changes.
    pub fn subscribe_wallboard(&mut self, now: Instant) -> SubId {
        self.roll_day(now);
        let snapshot = WallboardUpdate {
            at_ms: self.wall(now),
            snapshot: true,
            lanes: self
                .lanes
                .iter()
                .map(|(name, lane)| lane.board(name, now, |t| self.wall(t)))
                .collect(),
            agents: self.agents_by_state(),
        };
        self.add_subscriber(Topic::Wallboard, vec![StreamItem::Wallboard(snapshot)])
    }

    pub(super) fn add_subscriber(&mut self, topic: Topic, initial: Vec<StreamItem<P>>) -> SubId {
        self.next_sub += 1;
        let sub = SubId(self.next_sub);
        let outbox = Outbox::new(initial);
        self.subscribers.insert(sub, Subscriber { topic, outbox });
        self.woken.insert(sub);
        sub
    }

    /// The stream of `sub` ended (closed by us, or the desktop went away).
    pub fn unsubscribe(&mut self, sub: SubId, now: Instant) {
        let Some(s) = self.subscribers.remove(&sub) else {
            return;
        };
        if let Topic::Agent(id) = s.topic
            && let Some(a) = self.agents.get_mut(&id)
        {
            a.desktops.remove(&sub);
            if a.desktops.is_empty() && a.state != AgentState::LoggedOut {
                a.unwatched_since = Some(now);
            }
            self.agents_dirty = true;
        }
    }

    /// Takes what waits for `sub` (`closed`: end the stream after these).
    pub fn drain(&mut self, sub: SubId) -> Drained<StreamItem<P>> {
        match self.subscribers.get_mut(&sub) {
            Some(s) => s.outbox.drain(),
            None => Drained {
                items: Vec::new(),
                closed: true,
            },
        }
    }

    /// Items waiting for `sub`.
    pub fn backlog(&self, sub: SubId) -> usize {
        self.subscribers.get(&sub).map_or(0, |s| s.outbox.len())
    }

    pub(super) fn flush_wallboard(&mut self, now: Instant) {
        let watchers: Vec<SubId> = self
            .subscribers
            .iter()
            .filter(|(_, s)| matches!(s.topic, Topic::Wallboard))
            .map(|(id, _)| *id)
            .collect();
        if watchers.is_empty() {
            for lane in self.lanes.values_mut() {
                lane.dirty = false;
            }
            self.agents_dirty = false;
            return;
        }
        let wall = |t: Instant| self.wall(t);
        let lanes: Vec<_> = self
            .lanes
            .iter()
            .filter(|(_, l)| l.due(now))
            .map(|(name, l)| l.board(name, now, wall))
            .collect();
        if lanes.is_empty() && !self.agents_dirty {
            return;
        }
        for board in &lanes {
            if let Some(l) = self.lanes.get_mut(&board.lane) {
                l.dirty = false;
                l.last_sent = Some(now);
            }
        }
        self.agents_dirty = false;
        let update = WallboardUpdate {
            at_ms: self.wall(now),
            snapshot: false,
            lanes,
            agents: self.agents_by_state(),
        };
        for sub in watchers {
            self.deliver(sub, StreamItem::Wallboard(update.clone()), now);
        }
    }
}
