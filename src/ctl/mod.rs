//! `hotlinectl`'s work: a client of the daemon's gRPC API (server address, bearer token,
//! TLS), the output every API command shares (tables or JSON, errors with their gRPC code),
//! and the CSV imports of household files and units.
//!
//! Talks to the daemon only over the public API, like any other client; must not touch the
//! store or the daemon's internals.

mod import;
pub mod output;
mod table;

pub use import::{
    CUSTOMER_COLUMNS, ImportOptions, ImportSummary, Rejected, UNIT_COLUMNS, import_customers,
    import_units,
};
pub use table::Encoding;

use crate::api::pb::admin_client::AdminClient;
use crate::api::pb::agent_desk_client::AgentDeskClient;
use crate::api::pb::reports_client::ReportsClient;
use crate::api::pb::tickets_client::TicketsClient;
use std::path::{Path, PathBuf};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Where the daemon's API is and how to present ourselves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host:port`, or a URL with `http://` / `https://`.
    pub endpoint: String,
    /// The bearer token (without `Bearer `).
    pub token: String,
    /// PEM CA certificate to check an `https://` endpoint's certificate against.
    pub ca_file: Option<PathBuf>,
}

/// Why a command failed, and with it the exit status (see [`CtlError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Bad arguments or options.
    #[error("{0}")]
    Usage(String),
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// An input file that cannot be read as what it should be.
    #[error("{0}")]
    Input(String),
    /// The daemon answered with an error, or could not be reached.
    #[error("{0}")]
    Api(String),
}

impl CtlError {
    pub(crate) fn file(what: &'static str, path: &Path, source: std::io::Error) -> CtlError {
        CtlError::File {
            what,
            path: path.display().to_string(),
            source,
        }
    }

    /// 1 for an API error (the daemon refused or could not be reached), 2 for anything that
    /// kept the command from running (arguments, unreadable files, no token).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Api(_) => 1,
            CtlError::Usage(_) | CtlError::File { .. } | CtlError::Input(_) => 2,
        }
    }

    /// A failed API call, said for the operator: `CODE: message`, and what to do when the
    /// code says it (token, role, reachability).
    pub fn api(endpoint: &str, status: tonic::Status) -> CtlError {
        use tonic::Code;
        let advice = match status.code() {
            Code::Unauthenticated => {
                "; check the token (HOTLINE_TOKEN, --token-file) against the daemon's grpc.tokens"
                    .to_owned()
            }
            Code::PermissionDenied => "; use a token with a role that may do this".to_owned(),
            Code::Unavailable | Code::DeadlineExceeded => {
                format!("; is hotlined running and reachable at {endpoint}? check --server")
            }
            _ => String::new(),
        };
        CtlError::Api(format!(
            "{}: {}{advice}",
            code_name(status.code()),
            status.message()
        ))
    }
}

/// A gRPC status code as the gRPC specification spells it (`NOT_FOUND`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Reads the token: `HOTLINE_TOKEN` when set and no file is named, else the file (by
/// default `var/admin.token`, where hotlined writes its generated admin token).
pub fn load_token(file: Option<&Path>) -> Result<String, CtlError> {
    if file.is_none()
        && let Ok(token) = std::env::var("HOTLINE_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    let path = file.unwrap_or(Path::new("var/admin.token"));
    let text = std::fs::read_to_string(path).map_err(|err| {
        CtlError::Usage(format!(
            "reading the API token from {}: {err}; run hotlinectl in the folder hotlined runs \
             in, or pass --token-file, or set HOTLINE_TOKEN",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CtlError::Usage(format!(
            "the token file {} is empty; write the API token into it",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;
pub type Admin = AdminClient<Authed>;
pub type Tickets = TicketsClient<Authed>;
pub type Desk = AgentDeskClient<Authed>;
pub type Reports = ReportsClient<Authed>;

/// `host:port` → `http://host:port`; URLs stay as they are.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

/// The daemon's address with TLS set up for `https://` (trusting `--ca` when given), not
/// connected yet.
pub fn endpoint(options: &ClientOptions) -> Result<Endpoint, CtlError> {
    let url = endpoint_url(&options.endpoint);
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(|err| {
        CtlError::Usage(format!(
            "--server {}: {err}; give host:port or http(s)://host:port",
            options.endpoint
        ))
    })?;
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &options.ca_file {
            let pem = std::fs::read(ca).map_err(|err| CtlError::file("reading --ca", ca, err))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|err| CtlError::Usage(format!("TLS for {url}: {err}")))?;
    }
    Ok(endpoint)
}

/// The interceptor presenting `options.token`.
pub fn bearer(options: &ClientOptions) -> Result<BearerToken, CtlError> {
    let token = format!("Bearer {}", options.token).parse().map_err(|_| {
        CtlError::Usage("the token holds characters a header cannot carry; check it".into())
    })?;
    Ok(BearerToken(token))
}

/// A connection to the daemon presenting the token, from which each service's client is
/// made.
#[derive(Clone)]
pub struct Api {
    channel: Channel,
    bearer: BearerToken,
    /// The address as given, for messages.
    pub endpoint: String,
}

impl Api {
    /// Connects now: an unreachable daemon is an API error.
    pub async fn connect(options: &ClientOptions) -> Result<Api, CtlError> {
        let bearer = bearer(options)?;
        let channel = endpoint(options)?.connect().await.map_err(|err| {
            CtlError::Api(format!(
                "UNAVAILABLE: cannot reach hotlined at {}: {err}; is it running? check --server",
                endpoint_url(&options.endpoint)
            ))
        })?;
        Ok(Api {
            channel,
            bearer,
            endpoint: options.endpoint.clone(),
        })
    }

    pub fn tickets(&self) -> Tickets {
        TicketsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn admin(&self) -> Admin {
        // Rejected rows come back in one message; a large import may reject many.
        AdminClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
    }

    pub fn desk(&self) -> Desk {
        AgentDeskClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn reports(&self) -> Reports {
        ReportsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// Awaits one unary call: see [`output::call`].
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CtlError> {
        output::call(&self.endpoint, call).await
    }
}

/// Connects to the daemon's Admin service.
pub async fn connect_admin(options: &ClientOptions) -> Result<Admin, CtlError> {
    Ok(Api::connect(options).await?.admin())
}
