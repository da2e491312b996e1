//! `hotlinectl`'s work: a client of the daemon's gRPC API (endpoint, bearer token, TLS) and
//! the commands built on it — so far the CSV imports of household files and units.
//!
//! Talks to the daemon only over the public API, like any other client; must not touch the
//! store or the daemon's internals.

mod import;
mod table;

pub use import::{
    CUSTOMER_COLUMNS, ImportOptions, ImportSummary, Rejected, UNIT_COLUMNS, import_customers,
    import_units,
};
pub use table::Encoding;

use crate::api::pb::admin_client::AdminClient;
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

/// Why a command could not run (as opposed to rows it rejected).
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Usage(String),
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
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

    /// A failed API call, said for the operator: what happened and what to do.
    pub(crate) fn api(endpoint: &str, status: tonic::Status) -> CtlError {
        use tonic::Code;
        let advice = match status.code() {
            Code::Unauthenticated => {
                "; check the token (--token-file, HOTLINE_TOKEN) against the daemon's grpc.tokens"
            }
            Code::PermissionDenied => "; use a token with role \"admin\"",
            Code::Unavailable | Code::DeadlineExceeded => {
                "; is hotlined running and reachable there? check --endpoint"
            }
            _ => "",
        };
        CtlError::Api(format!(
            "hotlined at {endpoint} answered {:?}: {}{advice}",
            status.code(),
            status.message()
        ))
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

pub type Admin = AdminClient<InterceptedService<Channel, BearerToken>>;

/// `host:port` → `http://host:port`; URLs stay as they are.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

/// Connects to the daemon's Admin service.
pub async fn connect_admin(options: &ClientOptions) -> Result<Admin, CtlError> {
    let url = endpoint_url(&options.endpoint);
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(|err| {
        CtlError::Usage(format!(
            "--endpoint {}: {err}; give host:port or http(s)://host:port",
            options.endpoint
        ))
    })?;
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &options.ca_file {
            let pem =
                std::fs::read(ca).map_err(|err| CtlError::file("reading --ca-file", ca, err))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|err| CtlError::Usage(format!("TLS for {url}: {err}")))?;
    }
    let channel = endpoint.connect().await.map_err(|err| {
        CtlError::Api(format!(
            "cannot reach hotlined at {url}: {err}; is it running? check --endpoint"
        ))
    })?;
    let token = format!("Bearer {}", options.token).parse().map_err(|_| {
        CtlError::Usage("the token holds characters a header cannot carry; check it".into())
    })?;
    // Rejected rows come back in one message; a large import may reject many.
    Ok(AdminClient::with_interceptor(channel, BearerToken(token))
        .max_decoding_message_size(256 * 1024 * 1024))
}
