//! Automatic call distribution: agent queues, priorities (leaks first), agent selection,
//! overflow and queue position announcements, as a sans-IO state machine.
//!
//! **Fairness across queues.** All waiting calls form one line, whatever their queue, ordered
//! by: (1) leak calls before every other call; (2) then higher priority (the queue node's
//! `priority`); (3) then the longest wait — from when the caller *first* queued: a caller
//! moved to another queue, or back after a failed overflow, keeps their place; (4) arrival
//! order breaks ties. When agents are free, calls are offered in that order, each to the free
//! agent who has been idle longest among those who serve the call's queue (leak calls: any
//! free agent when `acd.leak.any_agent`). So an agent who becomes free is offered the first
//! call of that line among all the queues they serve — a billing caller who has waited 5
//! minutes goes before a general caller who has waited 1 minute, for an agent serving both.
//!
//! **Directed calls.** A call a desktop transferred to one agent ([`AcdEvent::CallDirected`])
//! is offered to that agent alone, ahead of the line, whatever queues they serve, while they
//! are free; not taken (or the agent not free), it joins the line in its queue like any call.
//!
//! **Positions.** A caller waiting in a non-leak queue is told how many calls are ahead: the
//! calls before it in the line above that compete for the same agents (same queue, or a queue
//! sharing an agent with it; leak calls count for everyone their `any_agent` reaches). Told
//! when the caller starts waiting and every `acd.announce_every_secs`, never a worse position
//! (nor a longer estimated wait) than the last one told: when a leak call jumps ahead, that
//! round is skipped. The estimated wait (`announce_estimated_wait`) is (calls ahead + 1) ×
//! the average handle time (learnt from calls that ended, `assumed_handle_secs` until then) ÷
//! the logged-in agents of the queue, in whole minutes.
//!
//! Owns who gets which call next and the callers' positions; must not do SIP or media.

pub mod config;
pub mod distributor;

pub use config::{AcdConfig, validate};
pub use distributor::{Acd, AcdAction, AcdEvent, AcdTimerId, AgentState, CallKey, ReportedState};

#[cfg(test)]
pub(crate) mod tests;
