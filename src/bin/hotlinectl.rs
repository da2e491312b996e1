//! `hotlinectl`: the administrators' command line, a client of hotlined's gRPC API.
//!
//! Exit status: 0 when everything was accepted, 1 when an import rejected rows (they are
//! listed with their reasons in the rejects file), 2 when the command could not run (bad
//! arguments, unreadable file, daemon unreachable, token refused).

use clap::{Args, Parser, Subcommand};
use hotline::ctl::{self, ClientOptions, Encoding, ImportOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(version, about = "Administer a running hotlined over its gRPC API")]
struct Cli {
    /// The daemon's gRPC API: host:port, http://host:port or https://host:port.
    #[arg(
        long,
        global = true,
        env = "HOTLINE_ENDPOINT",
        default_value = "127.0.0.1:50051"
    )]
    endpoint: String,
    /// File holding the API token. Default: $HOTLINE_TOKEN when set, else var/admin.token
    /// (where hotlined writes its generated admin token).
    #[arg(long, global = true, env = "HOTLINE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// PEM CA certificate for an https:// endpoint.
    #[arg(long, global = true, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import master data from a CSV file (see README.md for the columns).
    #[command(subcommand)]
    Import(Import),
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
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, ctl::CtlError> {
    let options = ClientOptions {
        endpoint: cli.endpoint,
        token: ctl::load_token(cli.token_file.as_deref())?,
        ca_file: cli.ca_file,
    };
    match cli.command {
        Command::Import(import) => {
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
                ctl::import_customers(&options, &args.file, &import_options).await?
            } else {
                ctl::import_units(&options, &args.file, &import_options).await?
            };
            println!("{summary}");
            Ok(if summary.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
