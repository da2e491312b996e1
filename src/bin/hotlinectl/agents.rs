//! `hotlinectl agents list|set`: the agents of `[acd.agents]` and their states, over
//! `hotline.v1.Admin` ListAgents / SetAgentState.

use clap::Subcommand;
use hotline::api::pb;
use hotline::ctl::output::{Render, Table, name_of, parse_enum, print};
use hotline::ctl::{Api, CtlError};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Every agent with its state and queues.
    List,
    /// Reports an agent in (available) or out (offline).
    Set {
        /// The agent id of [acd.agents].
        agent: String,
        /// available or offline (busy and wrap_up are the calls' own states).
        #[arg(value_parser = parse_enum::<pb::AgentState>)]
        state: pb::AgentState,
    },
}

pub async fn run(api: &Api, json: bool, command: AgentsCommand) -> Result<(), CtlError> {
    let mut admin = api.admin();
    let agents = match command {
        AgentsCommand::List => {
            api.call(admin.list_agents(pb::ListAgentsRequest {}))
                .await?
                .agents
        }
        AgentsCommand::Set { agent, state } => {
            let request = pb::SetAgentStateRequest {
                agent_id: agent,
                state: state.into(),
            };
            vec![api.call(admin.set_agent_state(request)).await?]
        }
    };
    let view = Agents {
        agents: agents.iter().map(AgentView::from).collect(),
    };
    print(json, &view)
}

#[derive(Debug, Serialize)]
struct AgentView {
    id: String,
    state: String,
    queues: Vec<String>,
}

impl From<&pb::Agent> for AgentView {
    fn from(a: &pb::Agent) -> AgentView {
        AgentView {
            id: a.id.clone(),
            state: name_of::<pb::AgentState>(a.state),
            queues: a.queues.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Agents {
    agents: Vec<AgentView>,
}

impl Render for Agents {
    fn human(&self) -> String {
        let mut table = Table::new(&["AGENT", "STATE", "QUEUES"]);
        for a in &self.agents {
            table.row(vec![a.id.clone(), a.state.clone(), a.queues.join(",")]);
        }
        table.render("no agents in [acd.agents]")
    }
}
