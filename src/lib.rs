//! Banter: a self-hosted real-time team chat server.
//!
//! Layers, each depending only on those listed before it:
//! - [`domain`]: the contract's words as types, and the rules (no I/O);
//! - [`store`]: the storage trait with its SQLite and PostgreSQL backends;
//! - [`bus`]: where committed events go for every node to hear;
//! - [`service`]: the use cases (authorise → validate → store → publish);
//! - [`http`]: the HTTP API (and the embedded web client);
//! - [`config`]: settings from the environment and flags.
//!
//! `main.rs` wires them together; tests use [`start`] to run a server on any listener.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub mod bus;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod service;
pub mod store;

use bus::{Bus, LocalBus, NatsBus};
use config::Config;
use gateway::Gateway;
use http::AppState;
use service::Service;

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            PrometheusBuilder::new()
                .set_buckets(&latency_buckets)
                .and_then(|builder| builder.install_recorder())
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                    PrometheusBuilder::new().build_recorder().handle()
                })
        })
        .clone()
}

/// Opens the database (migrating it) and builds the service.
pub async fn build_service(config: &Config) -> anyhow::Result<Arc<Service>> {
    let store = store::connect(&config.database_url).await?;
    let bus: Arc<dyn Bus> = match &config.bus {
        Some((url, cluster)) => Arc::new(NatsBus::connect(url, cluster).await?),
        None => Arc::new(LocalBus::default()),
    };
    Ok(Arc::new(Service::new(store, bus, config.auth())))
}

/// Serves Banter on `listener` until `shutdown` resolves.
pub async fn start(
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = build_service(config).await?;
    let gateway = Gateway::start(service.clone(), config.send_limits(), config.keepalive);
    let metrics = metrics_handle();
    // The recorder keeps every histogram sample until upkeep folds it into the buckets:
    // without this, each request and query left a few bytes behind for good.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let state = AppState { service, metrics };
    let routes = http::api_routes(state).merge(gateway::routes(gateway.clone()));
    let router = http::finish(routes, &config.http_options());
    // On shutdown, sockets are closed with 1001 (clients reconnect elsewhere) after their
    // in-flight sends commit; then the HTTP server drains.
    let closing = gateway.clone();
    http::serve(listener, router, config.tls.as_ref(), async move {
        shutdown.await;
        closing.shutdown(std::time::Duration::from_secs(10)).await;
    })
    .await?;
    Ok(())
}
