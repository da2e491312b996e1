//! The requests desktops make: states, wrap-up, call control.

use super::*;

impl<P> Desk<P> {
    /// `SetState`. During a call, NOT_READY and LOGGED_OUT become pending (applied when the
    /// call and its wrap-up end) and READY cancels a pending request.
    pub fn set_state(
        &mut self,
        agent: &str,
        requested: Requested,
        expected_version: Option<u64>,
        now: Instant,
    ) -> Result<AgentView, DeskError> {
        let a = self.agent(agent)?;
        if let Some(expected) = expected_version
            && expected != a.version
        {
            return Err(DeskError::Stale {
                expected,
                current: a.version,
            });
        }
        if let Requested::NotReady(code) = &requested {
            if SYSTEM_REASON_CODES.contains(&code.as_str()) {
                return Err(DeskError::SystemReason(code.clone()));
            }
            if !self.config.is_reason_code(code) {
                return Err(DeskError::UnknownReason(code.clone()));
            }
        }
        let in_call = a.state.is_call_state();
        self.roll_day(now);
        if in_call {
            let pending = (requested != Requested::Ready).then_some(requested);
            if let Some(a) = self.agents.get_mut(agent) {
                a.pending = pending;
            }
        } else {
            self.change_state(agent, requested.as_state(), now);
        }
        self.view(agent)
    }

    /// `ExtendWrapUp`: pushes the deadline `secs` further, at most `wrap_up_max_secs` after the
    /// wrap-up started. Answers the new deadline (Unix ms).
    pub fn extend_wrap_up(
        &mut self,
        agent: &str,
        secs: u64,
        now: Instant,
    ) -> Result<i64, DeskError> {
        let max = Duration::from_secs(self.config.wrap_up_max_secs);
        let a = self
            .agents
            .get_mut(agent)
            .ok_or_else(|| DeskError::UnknownAgent(agent.to_owned()))?;
        let Some(Current {
            offer,
            phase: Phase::WrapUp {
                started, deadline, ..
            },
            ..
        }) = a.current.as_mut()
        else {
            return Err(DeskError::NotInWrapUp(agent.to_owned()));
        };
        *deadline = (*deadline + Duration::from_secs(secs))
            .min(*started + max)
            .max(*deadline);
        let (call, deadline) = (offer.call.clone(), *deadline);
        let deadline_ms = self.wall(deadline);
        let kind = EventKind::WrapUpStarted { call, deadline_ms };
        self.publish(agent, kind, now);
        Ok(deadline_ms)
    }

    /// `CompleteWrapUp`: ends the wrap-up now and stores the disposition and notes.
    pub fn complete_wrap_up(
        &mut self,
        agent: &str,
        code: &str,
        notes: &str,
        now: Instant,
    ) -> Result<(), DeskError> {
        let a = self.agent(agent)?;
        let codes = &self.config.disposition_codes;
        if code.is_empty() || (!codes.is_empty() && !codes.iter().any(|c| c == code)) {
            return Err(DeskError::UnknownDisposition(code.to_owned()));
        }
        let Some(Current {
            offer,
            phase: Phase::WrapUp { .. },
            ..
        }) = &a.current
        else {
            return Err(DeskError::NotInWrapUp(agent.to_owned()));
        };
        self.actions.push(DeskAction::Disposition {
            call: offer.call.clone(),
            agent: agent.to_owned(),
            code: code.to_owned(),
            notes: notes.to_owned(),
        });
        self.end_wrap_up(agent, now);
        Ok(())
    }

    pub(super) fn end_wrap_up(&mut self, agent: &str, now: Instant) {
        let Some(Current {
            lane,
            phase: Phase::WrapUp { started, talk, .. },
            ..
        }) = self.agents.get(agent).and_then(|a| a.current.as_ref())
        else {
            return;
        };
        let (lane, took) = (
            lane.clone(),
            *talk + now.saturating_duration_since(*started),
        );
        self.handled(&lane, took);
        self.after_call(agent, now);
    }

    /// `TransferCall`, `HangUp`, `TransferToSurvey`: only for the agent talking on `call`; a
    /// transfer only to a configured queue or a configured agent who is READY (see
    /// `check_target`). Nothing happens to the call when refused.
    pub fn control(
        &mut self,
        agent: &str,
        call: &str,
        control: CallControl,
    ) -> Result<(), DeskError> {
        self.agent(agent)?;
        if !self
            .holds(agent, call)
            .is_some_and(|c| matches!(c.phase, Phase::Talking { .. }))
        {
            return Err(DeskError::NotHolding {
                agent: agent.to_owned(),
                call: call.to_owned(),
            });
        }
        if let CallControl::Transfer { to, .. } = &control {
            self.check_target(to)?;
        }
        if let CallControl::Transfer { notes, .. } = &control
            && !notes.is_empty()
            && let Some(c) = self.calls.get_mut(call)
        {
            c.handover.push(HandoverNote {
                from_agent: agent.to_owned(),
                notes: notes.clone(),
            });
        }
        self.actions.push(DeskAction::Control {
            call: call.to_owned(),
            agent: agent.to_owned(),
            control,
        });
        Ok(())
    }

    /// A transfer goes to a configured queue, or to a configured agent who is READY now. A
    /// blind transfer to an agent who is busy, not ready or logged out is refused rather than
    /// left waiting for them: the transferring agent keeps the caller and may choose a queue.
    fn check_target(&self, to: &TransferTarget) -> Result<(), DeskError> {
        let unknown = |field, name: &String| DeskError::UnknownTarget {
            field,
            name: name.clone(),
        };
        match to {
            TransferTarget::Queue(queue) if !self.queues.contains(queue) => {
                Err(unknown("queue", queue))
            }
            TransferTarget::Agent(target) => {
                let a = self
                    .agents
                    .get(target)
                    .ok_or_else(|| unknown("agent", target))?;
                if a.state == AgentState::Ready {
                    return Ok(());
                }
                let state = match a.state.reason_code() {
                    Some(code) => format!("{}({code})", a.state.name()),
                    None => a.state.name().to_owned(),
                };
                Err(DeskError::TargetNotReady {
                    agent: target.clone(),
                    state,
                })
            }
            _ => Ok(()),
        }
    }
}
