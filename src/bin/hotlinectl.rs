//! `hotlinectl`: the administrators' and agents' command line, a client of hotlined's gRPC
//! API.
//!
//! Exit status: 0 when done, 2 when the command could not run (bad arguments, daemon
//! unreachable, token refused).

#[path = "hotlinectl/desk.rs"]
mod desk;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(version, about = "Work with a running hotlined over its gRPC API")]
struct Cli {
    /// The daemon's gRPC API: host:port or http://host:port.
    #[arg(
        long,
        global = true,
        env = "HOTLINE_ENDPOINT",
        default_value = "127.0.0.1:50051"
    )]
    endpoint: String,
    /// File holding the API token. Default: $HOTLINE_TOKEN when set, else var/admin.token.
    #[arg(long, global = true, env = "HOTLINE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show an agent's desktop events live: states, offers with the screen pop, calls.
    Desk(desk::DeskArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Desk(args) => desk::run(&cli.endpoint, cli.token_file.as_deref(), args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hotlinectl: {err}");
            ExitCode::from(2)
        }
    }
}
