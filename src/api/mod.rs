//! The gRPC API (tonic): `hotline.v1.Tickets` and friends (`Admin`, `AgentDesk`, `Reports`),
//! bearer-token access control, health and reflection.
//!
//! Owns the wire mapping and access checks; rules come from `tickets`, SQL from `store`.

mod admin;
mod alerts;
mod auth;
mod demands;
mod desk;
mod intake;
mod master;
mod reports;
mod requests;
mod tickets;
mod transitions;

pub use admin::{AdminService, ReloadHook, reload_hook};
pub use alerts::{OverdueWatcher, TicketAlert};
pub use auth::{AccessList, Caller};
pub use desk::{AgentDeskService, event_to_proto, pop_to_proto};
pub use reports::ReportsService;
pub use tickets::{Clock, TicketsService};

use crate::config::TlsConfig;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;

/// Code generated from `proto/hotline/v1/*.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("hotline.v1");

    /// Descriptors of our protos and the well-known types they import, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("hotline_descriptor");
}

/// Why the gRPC server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("reading {what} {path}: {source}; check grpc.tls")]
    TlsFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Reads the PEM certificate chain and key named in `grpc.tls`.
pub fn load_tls(tls: &TlsConfig) -> Result<ServerTlsConfig, ApiError> {
    let read = |what, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ApiError::TlsFile {
            what,
            path: path.display().to_string(),
            source,
        })
    };
    let cert = read("certificate", &tls.cert)?;
    let key = read("private key", &tls.key)?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// HTTP/2 keepalive pings: a desktop whose connection died silently is noticed (and its
/// agent's desktop grace period starts) within interval + timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the health service checks that the ticket store answers.
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Reports `hotline.v1.Tickets` NOT_SERVING while the database does not answer (within
/// [`HEALTH_PROBE_INTERVAL`]) and SERVING again once it does; logs each change.
async fn watch_store_health(store: crate::store::Store, health: HealthReporter) {
    let mut serving = true;
    loop {
        tokio::time::sleep(HEALTH_PROBE_INTERVAL).await;
        let answers = matches!(
            tokio::time::timeout(HEALTH_PROBE_INTERVAL, store.ping()).await,
            Ok(Ok(()))
        );
        if answers == serving {
            continue;
        }
        serving = answers;
        if serving {
            tracing::info!("the ticket store answers again: hotline.v1.Tickets is SERVING");
            health
                .set_serving::<pb::tickets_server::TicketsServer<TicketsService>>()
                .await;
        } else {
            tracing::warn!(
                "the ticket store does not answer: hotline.v1.Tickets reports NOT_SERVING \
                 until it does"
            );
            health
                .set_not_serving::<pb::tickets_server::TicketsServer<TicketsService>>()
                .await;
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `hotline.v1.Tickets` and, when given, `hotline.v1.Admin` (token-checked),
/// `grpc.health.v1.Health` and server reflection (v1 and v1alpha, no token) on `listener`
/// until `shutdown` completes, then lets running calls finish.
pub async fn serve(
    tickets: TicketsService,
    access: AccessList,
    admin: Option<AdminService>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    serve_all(tickets, access, admin, None, listener, tls, shutdown).await
}

/// [`serve`], plus `hotline.v1.AgentDesk` when given.
pub async fn serve_all(
    tickets: TicketsService,
    access: AccessList,
    admin: Option<AdminService>,
    desk: Option<AgentDeskService>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    let services = Services {
        tickets,
        admin,
        desk,
        reports: None,
    };
    serve_services(services, access, listener, tls, shutdown).await
}

/// The services one server offers: `Tickets` always, the others when given.
pub struct Services {
    pub tickets: TicketsService,
    pub admin: Option<AdminService>,
    pub desk: Option<AgentDeskService>,
    pub reports: Option<ReportsService>,
}

/// Health says SERVING for each service given.
async fn mark_serving(health: &HealthReporter, services: &Services) {
    health
        .set_serving::<pb::tickets_server::TicketsServer<TicketsService>>()
        .await;
    if services.admin.is_some() {
        health
            .set_serving::<pb::admin_server::AdminServer<AdminService>>()
            .await;
    }
    if services.desk.is_some() {
        health
            .set_serving::<pb::agent_desk_server::AgentDeskServer<AgentDeskService>>()
            .await;
    }
    if services.reports.is_some() {
        health
            .set_serving::<pb::reports_server::ReportsServer<ReportsService>>()
            .await;
    }
}

/// Serves `services` (token-checked), health and reflection on `listener` until `shutdown`
/// completes, then lets running calls finish.
pub async fn serve_services(
    services: Services,
    access: AccessList,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    mark_serving(&health, &services).await;
    let Services {
        tickets,
        admin,
        desk,
        reports,
    } = services;
    // Aborted when serving ends (the guard drops).
    let _health_watch = AbortOnDrop(tokio::spawn(watch_store_health(
        tickets.store().clone(),
        health.clone(),
    )));
    // Health is described too, so that grpcurl-style clients can call it by name.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let desk_access = access.clone();
    let desk = desk.map(|desk| {
        pb::agent_desk_server::AgentDeskServer::with_interceptor(desk, move |request| {
            desk_access.check(request)
        })
    });
    let reports_access = access.clone();
    let reports = reports.map(|reports| {
        pb::reports_server::ReportsServer::with_interceptor(reports, move |request| {
            reports_access.check(request)
        })
    });
    let admin_access = access.clone();
    let admin = admin.map(|admin| {
        pb::admin_server::AdminServer::with_interceptor(admin, move |request| {
            admin_access.check(request)
        })
    });
    let tickets = pb::tickets_server::TicketsServer::with_interceptor(tickets, move |request| {
        access.check(request)
    });
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(tickets)
        .add_optional_service(admin)
        .add_optional_service(desk)
        .add_optional_service(reports)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
