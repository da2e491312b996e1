//! `hotlinectl calls live`: the calls waiting, ringing, talking or in the survey now, over
//! `hotline.v1.AgentDesk` ListLiveCalls (admin).

use clap::Subcommand;
use hotline::api::pb;
use hotline::ctl::output::{Render, Table, local, name_of, non_empty, print, rfc3339};
use hotline::ctl::{Api, CtlError};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// The calls in progress, oldest first as the daemon lists them.
    Live,
}

pub async fn run(api: &Api, json: bool, command: CallsCommand) -> Result<(), CtlError> {
    let CallsCommand::Live = command;
    let answer = api
        .call(api.desk().list_live_calls(pb::ListLiveCallsRequest {}))
        .await?;
    let view = LiveCalls {
        calls: answer.calls.iter().map(LiveCallView::from).collect(),
    };
    print(json, &view)
}

#[derive(Debug, Serialize)]
struct LiveCallView {
    call_id: String,
    queue: String,
    phase: String,
    agent_id: Option<String>,
    priority: u32,
    leak: bool,
    since: Option<String>,
    /// For the table only.
    #[serde(skip)]
    since_local: String,
}

impl From<&pb::LiveCall> for LiveCallView {
    fn from(c: &pb::LiveCall) -> LiveCallView {
        LiveCallView {
            call_id: c.call_id.clone(),
            queue: c.queue.clone(),
            phase: name_of::<pb::LivePhase>(c.phase),
            agent_id: non_empty(c.agent_id.clone()),
            priority: c.priority,
            leak: c.leak,
            since: rfc3339(c.since.as_ref()),
            since_local: local(c.since.as_ref()),
        }
    }
}

#[derive(Debug, Serialize)]
struct LiveCalls {
    calls: Vec<LiveCallView>,
}

impl Render for LiveCalls {
    fn human(&self) -> String {
        let mut table = Table::new(&["CALL", "QUEUE", "PHASE", "AGENT", "PRI", "LEAK", "SINCE"]);
        for c in &self.calls {
            table.row(vec![
                c.call_id.clone(),
                c.queue.clone(),
                c.phase.clone(),
                c.agent_id.clone().unwrap_or_default(),
                c.priority.to_string(),
                if c.leak { "leak" } else { "" }.to_owned(),
                c.since_local.clone(),
            ]);
        }
        table.render("no calls in progress")
    }
}
