//! Configuration: the one TOML file PBX administrators edit (documented example in
//! `deploy/hotline.toml`), its validation with file, line and key in every error, and the
//! environment variables that may carry secrets instead of the file.
//!
//! Owns parsing and validating; must not open sockets, touch the database or start tasks.
//!
//! Every problem is reported at once, each as `FILE:LINE:COL: KEY: what is wrong; what to do`.
//! Two layers find them:
//! - serde: each section is a struct with `#[serde(deny_unknown_fields)]`; unknown keys,
//!   wrong types and values a `deserialize_with` function rejects (socket addresses, time
//!   zones) land on their key without further code ([`ConfigSource::deserialize`]).
//! - semantic checks: a section's `validate(&self, problems: &mut Problems)` calls
//!   `problems.report("ivr.menus[2].digit", "… ; …")` with the key path (indices of the typed
//!   `Vec`s); [`Problems`] finds the line, or the enclosing table's line for a missing key.
//!
//! Adding a section: add its struct as a field of [`Config`] (with `#[serde(default)]` values
//! where a key is optional) and call its `validate` from `Config::validate`.

mod calendar;
mod callflow;
mod ops;
mod problems;
mod source;

pub use crate::logging::LogFormat;
pub use calendar::WorkingCalendar;
pub use callflow::{BUILTIN_CALL_FLOW, prompt_names};
pub use ops::{
    AnnouncementsConfig, MetricsConfig, RetentionConfig, TTS_OUT, TTS_TEXT, is_prompt_name,
};
pub use problems::{ConfigError, ConfigErrors, Position, Problems};
pub use source::ConfigSource;

use crate::tickets::Channel;
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

/// The whole validated configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub grpc: GrpcConfig,
    /// The one working-day calendar (`[calendar]`): the loader copies it into `ivr.calendar`
    /// and `tickets.calendar`, whose own date keys are refused.
    pub calendar: WorkingCalendar,
    /// The service rules (`[tickets]`). Its calendar's time zone is `daemon.time_zone` and its
    /// dates are `[calendar]`'s: the loader copies both there, and `tickets.calendar` keys
    /// themselves are refused.
    pub tickets: crate::tickets::RulesConfig,
    pub announcements: AnnouncementsConfig,
    pub retention: RetentionConfig,
    /// The Prometheus endpoint (`[metrics]`); off unless `listen` is set.
    pub metrics: MetricsConfig,
    /// SIP signalling; see `crate::sip::SipConfig`.
    pub sip: crate::sip::SipConfig,
    /// RTP ports, prompts and recordings; see `crate::media::config::MediaConfig`.
    pub media: crate::media::config::MediaConfig,
    /// The call flows; without `[ivr]` the built-in flow of `deploy/callflow.toml`.
    pub ivr: crate::ivr::IvrConfig,
    /// Queues and agents; without `[acd]` the built-in queues of `deploy/callflow.toml`.
    pub acd: crate::acd::AcdConfig,
    /// Agent desktops: reason codes, wrap-up, ring-no-answer, streams, the wallboard.
    pub desk: crate::desk::DeskConfig,
    /// What the checks found unwise or uncheckable but let run (`FILE:LINE:COL: KEY:
    /// warning: …`); the daemon logs them at start and on reload.
    #[serde(skip)]
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Where the daemon keeps its own files: the embedded PostgreSQL cluster, the spool.
    pub state_dir: PathBuf,
    /// IANA time zone for working days, shifts and deadlines; checked against chrono-tz.
    #[serde(deserialize_with = "time_zone_name")]
    pub time_zone: String,
    /// Seconds between two sweeps of the overdue watcher over the open tickets.
    pub overdue_check_seconds: u32,
    /// On SIGTERM: how long calls in progress may go on before they are hung up.
    pub shutdown_grace_secs: u64,
    /// Longest a call may last from its answer; then it is hung up. 0: no limit.
    pub max_call_secs: u64,
    /// Longest a caller may wait in a queue (leak calls exempt: they overflow); then the call
    /// is hung up. 0: no limit.
    pub max_queue_wait_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: PathBuf::from("var"),
            time_zone: "Asia/Shanghai".into(),
            overdue_check_seconds: 60,
            shutdown_grace_secs: 30,
            max_call_secs: 4 * 3600,
            max_queue_wait_secs: 1800,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `hotline=debug,info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` URL; empty means: start a private cluster under `daemon.state_dir`.
    /// `HOTLINE_DATABASE_URL` overrides it.
    pub url: Option<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    #[serde(deserialize_with = "socket_address")]
    pub listen: SocketAddr,
    pub tls: Option<TlsConfig>,
    /// Serve plaintext on a listen address other than loopback (tokens and tickets then
    /// cross the network readable); without it such a configuration refuses to start.
    pub allow_plaintext: bool,
    pub tokens: Vec<TokenConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: None,
            allow_plaintext: false,
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Agent,
    Integration,
    /// A responsible unit's desk: acts only on tickets dispatched to its unit.
    Unit,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it, for the audit trail (`agent:1001`, `wechat`).
    pub name: String,
    pub role: Role,
    /// The token itself; or `token_env`, the environment variable holding it. After
    /// [`load`] this always holds the secret, read from `token_env` when that was given.
    pub token: Option<String>,
    pub token_env: Option<String>,
    /// For `agent` tokens: the agent id.
    pub agent_id: Option<String>,
    /// For `integration` tokens: the channel code they create tickets on (`wechat`, `gov_12345`).
    pub channel: Option<String>,
    /// For `unit` tokens: the code of the responsible unit (`north_gas`).
    #[serde(default)]
    pub unit: Option<String>,
}

/// The password stays out of debug output, which may end up in logs.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url_password))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `postgres://u:secret@h/db?password=x` → `postgres://u:<redacted>@h/db?password=<redacted>`.
fn redact_url_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find('/')
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@')
            && let Some(colon) = out[authority_start..authority_start + at].find(':')
        {
            out.replace_range(
                authority_start + colon + 1..authority_start + at,
                "<redacted>",
            );
        }
    }
    if let Some(query_start) = out.find('?') {
        let query: Vec<String> = out[query_start + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => "password=<redacted>".to_owned(),
                _ => pair.to_owned(),
            })
            .collect();
        out.replace_range(query_start + 1.., &query.join("&"));
    }
    out
}

/// Secrets stay out of debug output, which may end up in logs.
impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .field("agent_id", &self.agent_id)
            .field("channel", &self.channel)
            .field("unit", &self.unit)
            .finish()
    }
}

/// Environment variable that overrides `database.url`, so the password need not be in the file.
pub const DATABASE_URL_ENV: &str = "HOTLINE_DATABASE_URL";

/// Shortest token accepted: shorter ones can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Looks up an environment variable; injected so tests need not change the process
/// environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment; a variable that is not valid UTF-8 counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads, parses and validates the configuration file at `path`, with secrets from the
/// process environment. Every problem is reported, each with file, line, column and key.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
    load_with_env(path, &process_env)
}

/// [`load`] with an explicit environment.
pub fn load_with_env(path: impl AsRef<Path>, env: EnvLookup<'_>) -> Result<Config, ConfigErrors> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::about_file(
            &origin,
            format!("cannot read the configuration file: {e}; check the path and its permissions"),
        )
    })?;
    load_str_with_env(&text, &origin, env)
}

/// Parses and validates configuration text; `origin` names it in messages (usually the path).
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, origin, &process_env)
}

/// [`load_str`] with an explicit environment.
pub fn load_str_with_env(
    text: &str,
    origin: &str,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let source = ConfigSource::parse(text, origin)?;
    let mut problems = Problems::new(&source);
    let Some(mut config) = source.deserialize::<Config>(&mut problems) else {
        return Err(problems.into_errors());
    };
    let url_from_env = config.resolve_env(env, &mut problems);
    // One time zone: the ticket calendar counts in daemon.time_zone.
    if source.contains("tickets.calendar.time_zone") {
        problems.report(
            "tickets.calendar.time_zone",
            "the ticket calendar uses daemon.time_zone; remove this key and set \
             daemon.time_zone instead",
        );
    }
    config.tickets.calendar.time_zone = config.daemon.time_zone.clone();
    // One calendar: [calendar] feeds opening hours and ticket deadlines.
    calendar::refuse_moved_keys(|key| source.contains(key), &mut problems);
    config.validate(url_from_env, &mut problems);
    config
        .calendar
        .apply(&mut config.ivr.calendar, &mut config.tickets.calendar);
    config.warnings = problems.take_warnings();
    problems.finish(config)
}

/// The configuration of a daemon started without `--config`: the defaults, with the secrets
/// from the environment, validated like a file; `path` given means [`load`] it.
pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(path) => load(path),
        None => load_str("", "(built-in defaults)"),
    }
}

/// What `hotlined --check-config FILE` does: load `path` like the daemon would.
pub fn check_file(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
    load(path)
}

/// `hotlined --check-config FILE`: prints `FILE: ok` and returns success, or prints every
/// problem (one per line, on stderr) and returns exit status 2.
pub fn run_check(path: impl AsRef<Path>) -> ExitCode {
    if print_check(path) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Checks the file as the daemon loads it and prints the verdict: `FILE: ok` (with the
/// number of warnings, each on stderr) on stdout, or every problem on stderr as
/// `FILE:LINE:COL: KEY: what is wrong; what to do`. Returns whether the file is fine.
pub fn print_check(path: impl AsRef<Path>) -> bool {
    let path = path.as_ref();
    match check_file(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            match config.warnings.len() {
                0 => println!("{}: ok", path.display()),
                n => println!("{}: ok, with {n} warning(s)", path.display()),
            }
            true
        }
        Err(errors) => {
            eprintln!("{errors}");
            false
        }
    }
}

impl Config {
    /// Takes secrets from the environment: `HOTLINE_DATABASE_URL` and each `token_env`.
    /// Returns whether the database URL came from the environment, for messages.
    fn resolve_env(&mut self, env: EnvLookup<'_>, problems: &mut Problems<'_>) -> bool {
        self.grpc.resolve_token_env(env, problems);
        if let Some(url) = env(DATABASE_URL_ENV).filter(|u| !u.is_empty()) {
            self.database.url = Some(url);
            return true;
        }
        // An empty URL means the same as none: run the private cluster.
        if self.database.url.as_deref() == Some("") {
            self.database.url = None;
        }
        false
    }

    /// Checks what types alone cannot: values that must agree with each other or with the
    /// machine (files that must exist).
    fn validate(&self, url_from_env: bool, problems: &mut Problems<'_>) {
        self.daemon.validate(problems);
        self.log.validate(problems);
        self.calendar.validate(problems);
        self.database.validate(url_from_env, problems);
        self.grpc.validate(problems);
        validate_rules(&self.tickets, problems);
        self.announcements.validate(problems);
        self.retention.validate(problems);
        let taken = [
            ("grpc.listen", self.grpc.listen),
            ("sip.listen", self.sip.listen),
        ];
        self.metrics.validate(&taken, problems);
        callflow::validate(&self.sip, &self.media, &self.ivr, &self.acd, problems);
        let queues = &self.acd.queues;
        for (key, message) in self.desk.problems(|q| queues.contains_key(q)) {
            problems.report(&key, message);
        }
    }

    /// The validated service rules. Cannot fail for a loaded configuration; a hand-built
    /// one gets the rules' own error.
    pub fn rules(&self) -> Result<crate::tickets::Rules, crate::tickets::config::RulesConfigError> {
        let mut rules = self.tickets.clone();
        rules.calendar.time_zone = self.daemon.time_zone.clone();
        crate::tickets::Rules::new(rules)
    }
}

/// `Rules::new` stops at the first problem; its error names the key it is about.
fn validate_rules(rules: &crate::tickets::RulesConfig, problems: &mut Problems<'_>) {
    use crate::tickets::calendar::CalendarError;
    use crate::tickets::config::RulesConfigError as E;
    let Err(err) = crate::tickets::Rules::new(rules.clone()) else {
        return;
    };
    let key = match &err {
        // The time zone is daemon.time_zone's, checked there.
        E::Calendar(CalendarError::UnknownTimeZone(_)) => return,
        E::Calendar(CalendarError::HolidayAndWorkingDay(_)) => {
            "tickets.calendar.make_up_working_days".to_owned()
        }
        E::BadTime { key, .. } | E::ZeroCount { key } => format!("tickets.{key}"),
        E::NoAttempts => "tickets.callback.min_attempts".to_owned(),
        E::BadTiers => "tickets.callback.sampling.tiers".to_owned(),
        E::BadFraction(_) => "tickets.nearly_due.fraction_remaining".to_owned(),
    };
    // The rules' messages start with the key; the report prefixes it already.
    let message = err.to_string();
    let message = message
        .strip_prefix(&key)
        .map(|rest| rest.trim_start_matches([':', ' ']).to_owned())
        .unwrap_or(message);
    problems.report(&key, message);
}

impl DaemonConfig {
    fn validate(&self, problems: &mut Problems<'_>) {
        if self.overdue_check_seconds == 0 {
            problems.report(
                "daemon.overdue_check_seconds",
                "is 0; give the seconds between two overdue sweeps (default 60)",
            );
        }
        if self.state_dir.as_os_str().is_empty() {
            problems.report(
                "daemon.state_dir",
                "empty; give a directory such as \"var\" or \"/var/lib/hotline\"",
            );
        } else if self.state_dir.exists() && !self.state_dir.is_dir() {
            problems.report(
                "daemon.state_dir",
                format!(
                    "{} exists but is not a directory; give a directory (it is created when \
                     missing)",
                    self.state_dir.display()
                ),
            );
        }
    }

    /// The configured time zone. Validated by the loader, so this cannot fail for a loaded
    /// configuration; a hand-built one with a bad name gets an error naming it.
    pub fn tz(&self) -> Result<chrono_tz::Tz, String> {
        chrono_tz::Tz::from_str(&self.time_zone)
            .map_err(|_| format!("unknown time zone {:?}", self.time_zone))
    }
}

impl LogConfig {
    fn validate(&self, problems: &mut Problems<'_>) {
        if self.filter.trim().is_empty() {
            problems.report("log.filter", "empty; write a filter such as \"info\"");
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.filter) {
            problems.report(
                "log.filter",
                format!(
                    "not a valid log filter ({e}); write a level (error, warn, info, debug, \
                     trace) or target=level pairs such as \"hotline=debug,info\""
                ),
            );
        }
    }
}

impl DatabaseConfig {
    fn validate(&self, url_from_env: bool, problems: &mut Problems<'_>) {
        if let Some(url) = &self.url {
            let from = if url_from_env {
                format!(" (from {DATABASE_URL_ENV})")
            } else {
                String::new()
            };
            // The URL may carry a password: describe it, never echo it.
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.report(
                    "database.url",
                    format!(
                        "not a PostgreSQL URL{from}; write postgres://USER@HOST:PORT/DATABASE, \
                         or leave it out to run a private PostgreSQL under daemon.state_dir"
                    ),
                );
            } else if let Err(e) = sqlx::postgres::PgConnectOptions::from_str(url) {
                problems.report(
                    "database.url",
                    format!(
                        "cannot be parsed{from}: {e}; write postgres://USER@HOST:PORT/DATABASE"
                    ),
                );
            }
        }
        if self.max_connections == 0 {
            problems.report(
                "database.max_connections",
                "is 0; allow at least 1 connection (default 10)",
            );
        }
    }
}

impl GrpcConfig {
    /// Whether the API would serve plaintext beyond this host. `Err` (refuse to start; the
    /// message is about `grpc.listen`) for a non-loopback `listen` without `[grpc.tls]`,
    /// unless `allow_plaintext = true`, which gives the warning to log at every start instead.
    pub fn plaintext_exposure(&self) -> Result<Option<String>, String> {
        if self.tls.is_some() || self.listen.ip().is_loopback() {
            return Ok(None);
        }
        let listen = self.listen;
        if self.allow_plaintext {
            Ok(Some(format!(
                "the gRPC API listens on {listen} without TLS (grpc.allow_plaintext = true): \
                 tokens and tickets cross the network readable; configure [grpc.tls]"
            )))
        } else {
            Err(format!(
                "{listen} is reachable from other hosts but [grpc.tls] is not \
                 configured, so tokens and tickets would cross the network readable: configure \
                 [grpc.tls] (cert, key), listen on 127.0.0.1, or write \
                 grpc.allow_plaintext = true if a trusted network or a TLS proxy protects it"
            ))
        }
    }

    fn resolve_token_env(&mut self, env: EnvLookup<'_>, problems: &mut Problems<'_>) {
        for (i, token) in self.tokens.iter_mut().enumerate() {
            let Some(var) = &token.token_env else {
                continue;
            };
            let key = format!("grpc.tokens[{i}].token_env");
            if token.token.is_some() {
                problems.report(
                    &key,
                    "both token and token_env are set; keep one (token_env keeps the secret \
                     out of the file)",
                );
                continue;
            }
            if var.is_empty() {
                problems.report(
                    &key,
                    "empty; name the environment variable holding the token",
                );
                continue;
            }
            match env(var).filter(|v| !v.is_empty()) {
                Some(secret) => token.token = Some(secret),
                None => problems.report(
                    &key,
                    format!(
                        "environment variable {var} is not set or empty; export it before \
                         starting hotlined, or write the secret in token = \"…\""
                    ),
                ),
            }
        }
    }

    fn validate(&self, problems: &mut Problems<'_>) {
        if let Err(refusal) = self.plaintext_exposure() {
            problems.report("grpc.listen", refusal);
        }
        if let Some(tls) = &self.tls {
            check_readable_file(
                problems,
                "grpc.tls.cert",
                &tls.cert,
                "PEM certificate chain",
            );
            check_readable_file(problems, "grpc.tls.key", &tls.key, "PEM private key");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut secrets: HashMap<&str, usize> = HashMap::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let at = |field: &str| format!("grpc.tokens[{i}].{field}");
            if token.name.trim().is_empty() {
                problems.report(
                    &at("name"),
                    "empty; name who holds the token, e.g. \"agent:1001\" or \"wechat\"",
                );
            } else if let Some(first) = names.insert(&token.name, i) {
                names.insert(&token.name, first);
                let other = problems.locate(&format!("grpc.tokens[{first}]"));
                problems.report(
                    &at("name"),
                    format!(
                        "duplicate token name {:?} (also {other}); give each token its own \
                         name so the audit trail tells holders apart",
                        token.name
                    ),
                );
            }
            self.validate_secret(token, i, &mut secrets, problems);
            validate_role_fields(token, i, problems);
        }
    }

    /// Each token needs exactly one unguessable secret of its own. Problems name where the
    /// secret came from and never show it.
    fn validate_secret<'a>(
        &self,
        token: &'a TokenConfig,
        i: usize,
        secrets: &mut HashMap<&'a str, usize>,
        problems: &mut Problems<'_>,
    ) {
        let source_key = if token.token_env.is_some() {
            format!("grpc.tokens[{i}].token_env")
        } else {
            format!("grpc.tokens[{i}].token")
        };
        let Some(secret) = token.token.as_deref() else {
            if token.token_env.is_none() {
                problems.report(
                    &format!("grpc.tokens[{i}]"),
                    "no secret: add token_env = \"VARIABLE\" (keeps the secret out of the \
                     file) or token = \"…\"",
                );
            }
            return;
        };
        let length = secret.chars().count();
        if length < MIN_TOKEN_LEN {
            problems.report(
                &source_key,
                format!(
                    "token too short ({length} characters); use at least {MIN_TOKEN_LEN} random \
                     characters, e.g. the output of `openssl rand -hex 32`"
                ),
            );
        } else if let Some(first) = secrets.insert(secret, i) {
            secrets.insert(secret, first);
            let other = problems.locate(&format!("grpc.tokens[{first}]"));
            problems.report(
                &source_key,
                format!(
                    "same secret as {other}; give every holder its own token so that one can \
                     be revoked alone"
                ),
            );
        }
    }
}

/// The fields that only some roles carry: agent_id (agents), channel (integrations), unit
/// (units) — required for their role, refused for the others.
fn validate_role_fields(token: &TokenConfig, i: usize, problems: &mut Problems<'_>) {
    let at = |field: &str| format!("grpc.tokens[{i}].{field}");
    match token.role {
        Role::Agent => match token.agent_id.as_deref() {
            None | Some("") => problems.report(
                &at("agent_id"),
                "missing: an agent token must name its agent; add agent_id = \"1001\"",
            ),
            Some(_) => {}
        },
        Role::Admin | Role::Integration | Role::Unit => {
            if token.agent_id.is_some() {
                problems.report(
                    &at("agent_id"),
                    "only agent tokens carry agent_id; remove it or set role = \"agent\"",
                );
            }
        }
    }
    match (token.role, token.channel.as_deref()) {
        (Role::Integration, None) => problems.report(
            &at("channel"),
            format!(
                "missing: an integration token must name the channel its tickets come \
                     from; add channel = \"…\", one of {}",
                channel_codes()
            ),
        ),
        (Role::Integration, Some(code)) => {
            if Channel::from_str(code).is_err() {
                problems.report(
                    &at("channel"),
                    format!(
                        "unknown channel {code:?}; expected one of {}",
                        channel_codes()
                    ),
                );
            }
        }
        (Role::Admin | Role::Agent | Role::Unit, Some(_)) => problems.report(
            &at("channel"),
            "only integration tokens carry channel; remove it or set role = \
                 \"integration\"",
        ),
        (Role::Admin | Role::Agent | Role::Unit, None) => {}
    }
    match (token.role, token.unit.as_deref()) {
        (Role::Unit, None | Some("")) => problems.report(
            &at("unit"),
            "missing: a unit token must name its unit; add unit = \"<unit code>\"",
        ),
        (Role::Unit, Some(code)) if !is_unit_code(code) => problems.report(
            &at("unit"),
            format!(
                "{code:?} is not a unit code; write up to 40 lowercase letters, digits \
                     and _, as in the units table"
            ),
        ),
        (Role::Unit, Some(_)) | (_, None) => {}
        (_, Some(_)) => problems.report(
            &at("unit"),
            "only unit tokens carry unit; remove it or set role = \"unit\"",
        ),
    }
}

fn check_readable_file(problems: &mut Problems<'_>, key: &str, path: &Path, what: &str) {
    let problem = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => match std::fs::File::open(path) {
            Ok(_) => return,
            Err(e) => format!("cannot open {}: {e}", path.display()),
        },
        Ok(_) => format!("{} is not a file", path.display()),
        Err(e) => format!("cannot open {}: {e}", path.display()),
    };
    problems.report(
        key,
        format!(
            "{problem}; give the {what} (relative paths start from the directory hotlined \
             runs in)"
        ),
    );
}

/// A responsible unit's code as the `units` table allows it.
pub fn is_unit_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn channel_codes() -> String {
    Channel::ALL
        .iter()
        .map(|c| c.code())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A socket address with a message that shows the expected form.
fn socket_address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not a socket address; write IP:PORT such as \"127.0.0.1:50051\" or \
             \"[::1]:50051\""
        ))
    })
}

/// An IANA time zone name known to chrono-tz, kept as written.
fn time_zone_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    match chrono_tz::Tz::from_str(&name) {
        Ok(_) => Ok(name),
        Err(_) => Err(serde::de::Error::custom(format!(
            "unknown time zone {name:?}; write an IANA name such as \"Asia/Shanghai\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted_in_debug_output() {
        let cases = [
            (
                "postgres://hotline:pa:ss@db.local:5432/hotline",
                "postgres://hotline:<redacted>@db.local:5432/hotline",
            ),
            (
                "postgres://hotline@localhost/hotline?host=/run/pg&password=x",
                "postgres://hotline@localhost/hotline?host=/run/pg&password=<redacted>",
            ),
            (
                "postgres://localhost/hotline",
                "postgres://localhost/hotline",
            ),
            ("not a url", "not a url"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url_password(url), expected);
        }
        let config = DatabaseConfig {
            url: Some("postgres://u:hunter2@h/db".into()),
            max_connections: 3,
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
