//! The metrics endpoint (`[metrics] listen`): HTTP/1.1 (hyper) answering `GET /metrics` with
//! the exposition text of [`super::metrics`]; any other path is 404, any other method 405.
//! A client gets [`HEADER_TIMEOUT`] to send its request head and at most [`MAX_HEAD_BYTES`]
//! of it; at most [`MAX_CONNECTIONS`] connections are served at once (more wait in the
//! listen backlog), so a stuck or hostile client costs little.
//!
//! Owns the HTTP side only; must not compute metrics.

use super::metrics::{CONTENT_TYPE, Metrics};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest a connection may stay open (a scrape takes milliseconds).
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);

/// Serves `metrics` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, metrics: &'static Metrics) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "metrics: accept failed");
                // E.g. out of file descriptors: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| answer(request, metrics));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIMIT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "metrics: connection ended"),
                Err(_) => tracing::debug!(%peer, "metrics: connection open too long: closed"),
            }
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    metrics: &'static Metrics,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(response(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here\n".into(),
        );
        refused
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return Ok(refused);
    }
    // Encoding takes a few locks briefly; off the runtime's core threads all the same.
    let text = tokio::task::spawn_blocking(|| metrics.encode())
        .await
        .unwrap_or_default();
    let mut ok = response(StatusCode::OK, text);
    ok.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(ok)
}
