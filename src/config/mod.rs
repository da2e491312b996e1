//! Configuration: the one TOML file PBX administrators edit (documented example in
//! `deploy/hotline.toml`), its validation with file, line and key in every error, and the
//! environment variables that may carry secrets instead of the file.
//!
//! Owns parsing and validating; must not open sockets, touch the database or start tasks.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole validated configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub grpc: GrpcConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Where the daemon keeps its own files: the embedded PostgreSQL cluster, the spool.
    pub state_dir: PathBuf,
    /// IANA time zone for working days, shifts and deadlines.
    pub time_zone: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: PathBuf::from("var"),
            time_zone: "Asia/Shanghai".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
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

#[derive(Debug, Clone, Deserialize)]
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
    pub listen: SocketAddr,
    pub tls: Option<TlsConfig>,
    pub tokens: Vec<TokenConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: None,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it, for the audit trail (`agent:1001`, `wechat`).
    pub name: String,
    pub role: Role,
    /// The token itself; or `token_env`, the environment variable holding it.
    pub token: Option<String>,
    pub token_env: Option<String>,
    /// For `agent` tokens: the agent id.
    pub agent_id: Option<String>,
    /// For `integration` tokens: the channel code they create tickets on (`wechat`, `gov_12345`).
    pub channel: Option<String>,
}
