//! `hotlinectl`: the administrators' command line, a client of hotlined's gRPC API.
//!
//! Connection: `--server` (alias `--endpoint`, or `HOTLINE_ENDPOINT`; default
//! 127.0.0.1:50051; `https://…` for TLS, checked against `--ca`, alias `--ca-file`). The
//! token is `HOTLINE_TOKEN` itself, or read from `--token-file` (or `HOTLINE_TOKEN_FILE`),
//! else from var/admin.token, where hotlined writes its generated admin token.
//!
//! Commands: `tickets`, `agents`, `announce`, `calls live`, `report`, `reload` call the
//! daemon; `check-config FILE` checks a configuration file here, as `hotlined
//! --check-config` does; `import` loads master data from CSV; `desk AGENT` follows an
//! agent's desktop.
//! Answers print as tables, or with `--json` as one JSON document for scripts.
//!
//! Exit status:
//! - 0: done;
//! - 1: the daemon answered with an error or could not be reached (stderr says
//!   `hotlinectl: CODE: message`, e.g. `NOT_FOUND: …`); `import`: some rows were rejected
//!   (listed with their reasons in the rejects file); `check-config`: the file has problems;
//! - 2: the command could not run: bad arguments, an unreadable file, no token.

#[path = "hotlinectl/agents.rs"]
mod agents;
#[path = "hotlinectl/announce.rs"]
mod announce;
#[path = "hotlinectl/calls.rs"]
mod calls;
#[path = "hotlinectl/desk.rs"]
mod desk;
#[path = "hotlinectl/report.rs"]
mod report;
#[path = "hotlinectl/tickets.rs"]
mod tickets;

use clap::{Args, Parser, Subcommand};
use hotline::ctl::{self, Api, ClientOptions, CtlError, Encoding, ImportOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(version, about = "Administer a running hotlined over its gRPC API")]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print answers as JSON (stable field names) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Connection {
    /// The daemon's gRPC API: host:port, http://host:port or https://host:port.
    #[arg(
        long,
        visible_alias = "endpoint",
        global = true,
        env = "HOTLINE_ENDPOINT",
        default_value = "127.0.0.1:50051",
        value_name = "ADDRESS"
    )]
    server: String,
    /// File holding the API token. Default: the token in $HOTLINE_TOKEN when set, else
    /// var/admin.token (where hotlined writes its generated admin token).
    #[arg(long, global = true, env = "HOTLINE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// PEM CA certificate to check an https:// server against.
    #[arg(long, visible_alias = "ca-file", global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
}

impl Connection {
    /// Where to connect and the token to present (read now: only commands that call the
    /// daemon need one).
    fn options(self) -> Result<ClientOptions, CtlError> {
        Ok(ClientOptions {
            token: ctl::load_token(self.token_file.as_deref())?,
            endpoint: self.server,
            ca_file: self.ca,
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Api(ApiCommand),
    /// Checks a configuration file here, as `hotlined --check-config` does: every problem
    /// with its file, line and key. Exit 0 when it is fine, 1 when not.
    CheckConfig {
        /// The configuration file (TOML).
        file: PathBuf,
    },
    /// Import master data from a CSV file (see README.md for the columns).
    #[command(subcommand)]
    Import(Import),
    /// Show an agent's desktop events live: states, offers with the screen pop, calls.
    Desk(desk::DeskArgs),
}

/// The commands that make one round of calls to the daemon and print the answer.
#[derive(Debug, Subcommand)]
enum ApiCommand {
    /// Tickets: list, show, create, change and move them through the service rules.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
    /// Agents of [acd.agents]: their states; report one in or out.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Outage announcements played before the first menu.
    #[command(subcommand)]
    Announce(announce::AnnounceCommand),
    /// Calls in progress.
    #[command(subcommand)]
    Calls(calls::CallsCommand),
    /// The service report: calls, the leak lane and tickets per day, week or month.
    Report(report::ReportArgs),
    /// Makes the daemon read its configuration file again.
    Reload,
}

#[derive(Debug, Subcommand)]
enum Import {
    /// Household files (一户一档): created or updated by account number.
    Customers(ImportArgs),
    /// Responsible units: created or updated by code.
    Units(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The CSV file, with a header row naming the columns.
    file: PathBuf,
    /// The file's character encoding.
    #[arg(long, value_enum, default_value = "utf-8")]
    encoding: Encoding,
    /// Check and count every row, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where to write the rejected rows with their reasons (default: FILE's name with
    /// .rejects.csv, beside it).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hotlinectl: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CtlError> {
    match cli.command {
        Command::CheckConfig { file } => Ok(match hotline::config::print_check(&file) {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(1),
        }),
        Command::Import(import) => run_import(&cli.connection.options()?, import).await,
        Command::Desk(args) => {
            desk::run(&cli.connection.options()?, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Api(command) => {
            let api = Api::connect(&cli.connection.options()?).await?;
            let json = cli.json;
            match command {
                ApiCommand::Tickets(command) => tickets::run(&api, json, command).await?,
                ApiCommand::Agents(command) => agents::run(&api, json, command).await?,
                ApiCommand::Announce(command) => announce::run(&api, json, command).await?,
                ApiCommand::Calls(command) => calls::run(&api, json, command).await?,
                ApiCommand::Report(args) => report::run(&api, json, args).await?,
                ApiCommand::Reload => reload(&api, json).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn reload(api: &Api, json: bool) -> Result<(), CtlError> {
    let mut admin = api.admin();
    let answer = api
        .call(admin.reload_config(hotline::api::pb::ReloadConfigRequest {}))
        .await?;
    let view = Reloaded {
        summary: answer.summary,
    };
    ctl::output::print(json, &view)
}

#[derive(Debug, serde::Serialize)]
struct Reloaded {
    summary: String,
}

impl ctl::output::Render for Reloaded {
    fn human(&self) -> String {
        match self.summary.is_empty() {
            true => "configuration reloaded\n".to_owned(),
            false => format!("{}\n", self.summary),
        }
    }
}

async fn run_import(options: &ClientOptions, import: Import) -> Result<ExitCode, CtlError> {
    let (args, customers) = match import {
        Import::Customers(args) => (args, true),
        Import::Units(args) => (args, false),
    };
    let import_options = ImportOptions {
        encoding: args.encoding,
        dry_run: args.dry_run,
        rejects_file: args.rejects,
        progress: !args.quiet,
    };
    let summary = if customers {
        ctl::import_customers(options, &args.file, &import_options).await?
    } else {
        ctl::import_units(options, &args.file, &import_options).await?
    };
    println!("{summary}");
    Ok(if summary.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
