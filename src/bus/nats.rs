//! The cluster bus: every node publishes its notices to one NATS subject per cluster
//! (`banter.<cluster>.notices`) and hears everyone else's. A node hands its own notices
//! to itself directly, so local delivery never waits for NATS, and ignores its own
//! echoes.
//!
//! NATS does not keep messages for a node that is away, so a reconnect is announced to
//! the node as [`Notice::Resync`]: the gateway then fills every room from the database.
//! A single lost notice between two connected nodes shows up as a seq gap and is filled
//! the same way.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::connection::State;
use async_nats::{ConnectOptions, Event};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::{Bus, Notice};

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    sent_at_ms: i64,
    notice: Notice,
}

pub struct NatsBus {
    client: async_nats::Client,
    local: broadcast::Sender<Arc<Notice>>,
    outgoing: mpsc::UnboundedSender<Notice>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl NatsBus {
    /// Connects to the NATS server at `url` and joins `cluster`.
    pub async fn connect(url: &str, cluster: &str) -> anyhow::Result<Self> {
        let node = format!("{:016x}", rand::random::<u64>());
        let subject = format!("banter.{cluster}.notices");
        let (local, _) = broadcast::channel(65_536);
        let announcer = local.clone();
        let client = ConnectOptions::new()
            .name(format!("banter-{node}"))
            .event_callback(move |event| {
                let announcer = announcer.clone();
                async move {
                    match event {
                        Event::Connected => {
                            tracing::info!("cluster bus connected");
                            metrics::gauge!("banter_bus_connected").set(1.0);
                            let _ = announcer.send(Arc::new(Notice::Resync));
                        }
                        Event::Disconnected => {
                            tracing::warn!("cluster bus disconnected; reconnecting");
                            metrics::gauge!("banter_bus_connected").set(0.0);
                        }
                        other => tracing::info!(event = %other, "cluster bus event"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to the cluster bus at BUS_URL: {e}"))?;
        metrics::gauge!("banter_bus_connected").set(1.0);

        let mut incoming = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot subscribe to the cluster bus: {e}"))?;
        let receiver = local.clone();
        let me = node.clone();
        tokio::spawn(async move {
            while let Some(message) = incoming.next().await {
                match serde_json::from_slice::<Envelope>(&message.payload) {
                    Ok(envelope) if envelope.origin == me => {}
                    Ok(envelope) => {
                        metrics::counter!("banter_bus_received_total").increment(1);
                        let lag = (now_ms() - envelope.sent_at_ms).max(0) as f64 / 1000.0;
                        metrics::histogram!("banter_bus_lag_seconds").record(lag);
                        let _ = receiver.send(Arc::new(envelope.notice));
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable notice on the cluster bus"),
                }
            }
        });

        let (outgoing, mut queue) = mpsc::unbounded_channel::<Notice>();
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some(notice) = queue.recv().await {
                let envelope = Envelope {
                    origin: node.clone(),
                    sent_at_ms: now_ms(),
                    notice,
                };
                let payload = match serde_json::to_vec(&envelope) {
                    Ok(payload) => payload,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a notice for the cluster bus");
                        continue;
                    }
                };
                match publisher.publish(subject.clone(), payload.into()).await {
                    Ok(()) => metrics::counter!("banter_bus_published_total").increment(1),
                    Err(e) => {
                        metrics::counter!("banter_bus_publish_errors_total").increment(1);
                        tracing::warn!(error = %e, "cannot publish to the cluster bus; other nodes will fill from the database");
                    }
                }
            }
        });
        Ok(Self {
            client,
            local,
            outgoing,
        })
    }
}

impl Bus for NatsBus {
    fn publish(&self, notice: Notice) {
        if notice != Notice::Resync {
            let _ = self.outgoing.send(notice.clone());
        }
        let _ = self.local.send(Arc::new(notice));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.local.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}
