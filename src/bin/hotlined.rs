//! `hotlined`: the hotline daemon. Starts the database (the configured server, or a private
//! cluster under the state folder), brings the schema up to date, answers calls (SIP, media,
//! IVR, ACD) and serves the gRPC API until Ctrl-C or SIGTERM, then stops in that order
//! reversed: new calls refused, calls in progress given `daemon.shutdown_grace_secs`. SIGHUP
//! reloads the configuration file for new calls (an invalid file is refused and logged).

use anyhow::{Context, anyhow};
use clap::Parser;
use hotline::api::{self, AccessList, AdminService, Caller, ReloadHook, TicketsService};
use hotline::call::{CallStack, Reloader};
use hotline::config::{self, Config, LogFormat};
use hotline::logging;
use hotline::ops::{self, Announcer};
use hotline::store::embedded::{self, Durability, EmbeddedPostgres};
use hotline::store::{Store, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The database the private cluster keeps our tables in.
const EMBEDDED_DATABASE: &str = "hotline";

#[derive(Debug, Parser)]
#[command(version, about = "The hotline daemon: IVR, tickets and their gRPC API")]
struct Args {
    /// The configuration file (TOML). Without it: a private database under ./var, gRPC on
    /// 127.0.0.1:50051 with a generated admin token in var/admin.token, SIP on
    /// 127.0.0.1:5060 with the built-in call flow and the prompts in ./sounds/zh-CN.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines for people or for a log collector; overrides log.format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Check FILE — every problem with its line and key — and exit: 0 when it is fine, 2 when not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Address the gRPC API listens on; overrides grpc.listen.
    #[arg(long, value_name = "ADDR", env = "HOTLINE_GRPC_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address SIP (UDP and TCP) listens on; overrides sip.listen.
    #[arg(long, value_name = "ADDR", env = "HOTLINE_SIP_LISTEN")]
    sip_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return config::run_check(path);
    }
    let mut config = match config::load_or_default(args.config.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!(
                "hotlined: the configuration has problems; fix them and start again:\n{errors}"
            );
            return ExitCode::from(2);
        }
    };
    if let Some(format) = args.log_format {
        config.log.format = match format {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    if let Some(listen) = args.listen {
        config.grpc.listen = listen;
    }
    if let Some(listen) = args.sip_listen {
        config.sip.listen = listen;
    }
    // Checked again here: --listen may have moved the API off loopback.
    let plaintext_warning = match config.grpc.plaintext_exposure() {
        Ok(warning) => warning,
        Err(refusal) => {
            eprintln!("hotlined: grpc.listen: {refusal}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = logging::init(config.log.format, &config.log.filter) {
        eprintln!("hotlined: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(warning) = plaintext_warning {
        tracing::warn!("{warning}");
    }
    for warning in &config.warnings {
        tracing::warn!("configuration: {warning}");
    }
    match run(config, args.config.clone()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("hotlined: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let state_dir = &config.daemon.state_dir;
    hotline::files::create_private_dir(state_dir).with_context(|| {
        format!(
            "creating daemon.state_dir {} (mode 0700); create it or choose another folder",
            state_dir.display()
        )
    })?;
    let time_zone: chrono_tz::Tz = config.daemon.time_zone.parse().map_err(|_| {
        anyhow!(
            "daemon.time_zone {:?} is not an IANA time zone; use e.g. \"Asia/Shanghai\"",
            config.daemon.time_zone
        )
    })?;
    let mut access = AccessList::from_config(&config.grpc.tokens).map_err(|err| anyhow!(err))?;
    if access.is_empty() {
        let path = state_dir.join("admin.token");
        let token = admin_token(&path)?;
        tracing::info!(
            file = %path.display(),
            "no grpc.tokens configured: the admin token is in this file"
        );
        access = access.with(
            &token,
            Caller::Admin {
                name: "admin.token".into(),
            },
        );
    }
    let tls = config.grpc.tls.as_ref().map(api::load_tls).transpose()?;
    let store_options = StoreOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(5),
        time_zone,
    };
    match &config.database.url {
        Some(url) => {
            let connect: PgConnectOptions = url
                .parse()
                .context("database.url is not a postgres:// URL")?;
            serve(connect, &store_options, &config, config_path, access, tls).await
        }
        None => {
            let root = state_dir.join("postgres");
            embedded::let_server_through(state_dir)?;
            tracing::info!(folder = %root.display(), "starting the private PostgreSQL");
            let cluster = EmbeddedPostgres::start(&root, Durability::Durable).await?;
            if let Err(err) = cluster.create_database(EMBEDDED_DATABASE).await {
                let _ = cluster.stop().await;
                return Err(err.into());
            }
            let connect = cluster.connect_options(EMBEDDED_DATABASE);
            let cluster = cluster.supervise();
            let served = serve(connect, &store_options, &config, config_path, access, tls).await;
            tracing::info!("stopping the private PostgreSQL");
            let stopped = cluster.stop().await;
            served?;
            Ok(stopped?)
        }
    }
}

async fn serve(
    connect: PgConnectOptions,
    store_options: &StoreOptions,
    config: &Config,
    config_path: Option<PathBuf>,
    access: AccessList,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<()> {
    let store = Store::connect(connect, store_options)
        .await
        .context("connecting to the database; check database.url and that the server is running")?;
    store
        .migrate()
        .await
        .context("bringing the database schema up to date")?;
    let rules = config
        .rules()
        .context("the [tickets] rules are invalid; run hotlined --check-config")?;
    let tickets = TicketsService::new(store.clone(), rules);
    // The watcher stops when told to or when `stop` is dropped (any early return below).
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(tickets.overdue_watcher().run(
        Duration::from_secs(config.daemon.overdue_check_seconds.into()),
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    let listen = config.grpc.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (grpc.listen): is another hotlined running? choose a free address")
    })?;
    let metrics_listener = match config.metrics.listen {
        Some(listen) => Some(tokio::net::TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen on {listen} (metrics.listen): is another hotlined running? choose a free address")
        })?),
        None => None,
    };
    let reloader = Arc::new(Reloader::new(config_path, config.clone()));
    let calls = CallStack::start(reloader.subscribe(), store.clone())
        .await
        .context("starting call handling")?;
    let metrics = start_metrics(metrics_listener, &calls, &store, config)?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "gRPC API serving");
    let announcer = Announcer::new(
        store.clone(),
        config.daemon.announcements_dir(),
        config.announcements.clone(),
    );
    let admin =
        AdminService::new(announcer, reload_hook(reloader.clone())).with_agents(calls.agent_desk());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let desk = api::AgentDeskService::new(calls.desktops());
    // Committed changes of a call's ticket reach the agent's desktop.
    let tickets = tickets.with_ticket_changes(calls.desktops().ticket_changes());
    let reports = api::ReportsService::new(store.clone(), reloader.subscribe());
    let services = api::Services {
        tickets,
        admin: Some(admin),
        desk: Some(desk),
        reports: Some(reports),
    };
    let api = tokio::spawn(api::serve_services(
        services,
        access,
        listener,
        tls,
        async {
            let _ = api_stopped.await;
        },
    ));
    // Recording retention: runs until aborted (returns at once when recordings are kept
    // forever).
    let purge = tokio::spawn(ops::run_purge_loop(
        store.clone(),
        config.media.recordings_dir.clone(),
        config.retention.clone(),
    ));
    // Warns now and daily while [calendar] lacks this (or, in December, next) year's dates.
    let calendar_check = tokio::spawn(ops::run_calendar_check(reloader.subscribe()));
    wait_for_shutdown(&reloader).await;
    purge.abort();
    calendar_check.abort();
    for task in metrics {
        task.abort();
    }
    let grace = Duration::from_secs(reloader.current().daemon.shutdown_grace_secs);
    calls.shutdown(grace).await;
    let _ = stop_api.send(());
    let served = api.await.context("the gRPC API task failed")?;
    tracing::info!("gRPC API stopped");
    // Also when the server stopped by itself (an error): the watcher must end too.
    let _ = stop.send(true);
    if let Err(err) = watcher.await {
        tracing::warn!(%err, "the overdue watcher ended abnormally");
    }
    tracing::info!("overdue watcher stopped");
    store.close().await;
    Ok(served?)
}

/// With `[metrics] listen`: the live source registered, the ticket counts sampled and
/// `/metrics` served (tasks to abort at shutdown); without it nothing runs.
fn start_metrics(
    listener: Option<tokio::net::TcpListener>,
    calls: &CallStack,
    store: &Store,
    config: &Config,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(listener) = listener else {
        return Ok(Vec::new());
    };
    let metrics = ops::metrics::global();
    metrics.set_live_source(Box::new(calls.metrics_source()));
    tracing::info!(address = %listener.local_addr()?, "metrics serving at /metrics");
    Ok(vec![
        tokio::spawn(ops::metrics::run_ticket_sampler(
            store.clone(),
            config.metrics.ticket_query_interval(),
        )),
        tokio::spawn(ops::metrics_http::serve(listener, metrics)),
    ])
}

/// The admin API's `ReloadConfig`: the same reload as SIGHUP.
fn reload_hook(reloader: Arc<Reloader>) -> ReloadHook {
    api::reload_hook(move || {
        let reloader = reloader.clone();
        async move {
            match reloader.reload() {
                Ok(_) => Ok(
                    "configuration reloaded: new calls use it; calls in progress keep theirs"
                        .into(),
                ),
                Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
            }
        }
    })
}

/// Reloads on SIGHUP; returns on Ctrl-C or SIGTERM.
async fn wait_for_shutdown(reloader: &Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            tracing::warn!(%err, "cannot watch SIGHUP; reload by restarting");
            None
        }
    };
    let mut stop = std::pin::pin!(shutdown_requested());
    loop {
        tokio::select! {
            () = &mut stop => return,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!("SIGHUP: reloading the configuration");
                // Errors are logged by the reloader; the running configuration stays.
                let _ = reloader.reload();
            }
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_requested() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(%err, "cannot watch SIGTERM; only Ctrl-C stops the daemon");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}

/// The admin token of a configuration without tokens: read from `path`, or generated at
/// first start and written there readable by the owner only.
fn admin_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.len() < 16 {
                return Err(anyhow!(
                    "{} holds no usable token; delete it to have a new one generated",
                    path.display()
                ));
            }
            Ok(token)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let token: String = rand::random::<[u8; 32]>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(file, "{token}").with_context(|| format!("writing {}", path.display()))?;
            Ok(token)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}
