//! What the API lists: agents, agents by state, live calls.

use super::*;

impl<P> Desk<P> {
    /// Every lane as the wallboard shows it at `now` (calls waiting, longest wait).
    pub fn lane_boards(&self, now: Instant) -> Vec<crate::desk::LaneBoard> {
        self.lanes
            .iter()
            .map(|(name, lane)| lane.board(name, now, |t| self.wall(t)))
            .collect()
    }

    pub fn agents_by_state(&self) -> AgentsByState {
        let mut by = AgentsByState::default();
        for a in self.agents.values() {
            let slot = match a.state {
                AgentState::LoggedOut => &mut by.logged_out,
                AgentState::Ready => &mut by.ready,
                AgentState::NotReady(_) => &mut by.not_ready,
                AgentState::Ringing => &mut by.ringing,
                AgentState::OnCall => &mut by.on_call,
                AgentState::WrapUp => &mut by.wrap_up,
            };
            *slot += 1;
        }
        by
    }

    pub fn view(&self, agent: &str) -> Result<AgentView, DeskError> {
        let a = self.agent(agent)?;
        Ok(AgentView {
            id: agent.to_owned(),
            state: a.state.clone(),
            version: a.version,
            pending: a.pending.clone(),
            queues: a.queues.clone(),
            call: a.current.as_ref().map(|c| c.offer.call.clone()),
            desktops: a.desktops.len(),
        })
    }

    pub fn agents(&self) -> Vec<AgentView> {
        self.agents
            .keys()
            .filter_map(|id| self.view(id).ok())
            .collect()
    }

    /// The call as supervisors see it, with how long it has waited in its queue so far.
    pub fn live_call(&self, call: &str, now: Instant) -> Option<(LiveCall, Duration)> {
        let c = self.calls.get(call)?;
        let waited = c
            .waiting_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        let live = LiveCall {
            call: call.to_owned(),
            queue: c.queue.clone(),
            priority: c.priority,
            leak: c.leak,
            agent: c.agent.clone(),
            phase: c.phase,
            since_ms: self.wall(c.since),
        };
        Some((live, waited))
    }

    /// Calls waiting, ringing, talking or still with the caller after the agent left.
    pub fn live_calls(&self) -> Vec<LiveCall> {
        let now = self.anchor.0;
        let mut calls: Vec<LiveCall> = self
            .calls
            .keys()
            .filter_map(|id| self.live_call(id, now).map(|(live, _)| live))
            .collect();
        calls.sort_by(|a, b| (a.since_ms, &a.call).cmp(&(b.since_ms, &b.call)));
        calls
    }
}
