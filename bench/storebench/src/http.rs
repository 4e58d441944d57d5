//! History pages end to end: a real Banter server started in this process on
//! 127.0.0.1:0 against the benchmark database, read at a fixed open-loop rate.
//!
//! Open loop: request i is due at `start + i / rate` whatever happened to earlier ones;
//! its latency is counted from that due time, so time spent waiting for a free
//! connection (the server falling behind) is part of the figure rather than silently
//! lowering the offered rate. A dedicated OS thread paces the requests because tokio's
//! timer has 1 ms granularity, coarser than the 0.5 ms spacing at 2,000 requests/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use banter::config::{Config, Settings};
use clap::Parser;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::sync::{Semaphore, oneshot};

use crate::BenchRoom;
use crate::fill::random_page;
use crate::stats::Summary;

pub struct HttpOptions {
    pub rate: f64,
    pub requests: usize,
    pub warmup: usize,
    pub connections: usize,
    pub limit: i64,
}

pub struct HttpFigures {
    /// From the due time to the last body byte.
    pub latency: Summary,
    /// From the actual send to the last body byte (excludes waiting for a connection).
    pub service: Summary,
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub errors: usize,
    pub connections: usize,
}

#[derive(clap::Parser)]
struct ServerFlags {
    #[command(flatten)]
    settings: Settings,
}

/// A running in-process server.
pub struct Server {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts Banter as the tests do: Settings → Config::resolve → banter::start.
    pub async fn start(database_url: &str) -> anyhow::Result<Server> {
        // Built by parsing flags, as `banter serve` does, so every setting this benchmark
        // does not care about keeps the server's own default (and new settings need no
        // change here).
        let data_dir = std::env::temp_dir().join("storebench-data");
        let flags = [
            "storebench-server",
            "--database-url",
            database_url,
            "--data-dir",
            data_dir.to_str().context("temp dir is not UTF-8")?,
            "--bind",
            "127.0.0.1:0",
            "--secret-key",
            "storebench-secret-key-that-is-long-enough-0123456789",
            // Long enough that the reader's token outlives any run.
            "--access-token-lifetime",
            "600",
        ];
        let settings = ServerFlags::try_parse_from(flags)?.settings;
        let config = Config::resolve(&settings)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            banter::start(&config, listener, async move {
                let _ = stopped.await;
            })
            .await
        });
        let server = Server {
            base,
            stop: Some(stop),
            task,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        for _ in 0..400 {
            let healthz = client.get(format!("{}/healthz", self.base)).send().await;
            if healthz.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("the in-process server did not become healthy")
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await??;
        Ok(())
    }
}

/// Registers a fresh reader (unique per run, so --skip-fill runs never collide) and
/// returns its access token.
async fn register_reader(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let username = format!(
        "bench_reader_{}",
        chrono::Utc::now().timestamp_millis() % 100_000_000_000
    );
    let response = client
        .post(format!("{base}/auth/register/"))
        .json(&json!({
            "username": username,
            "email": format!("{username}@bench.invalid"),
            "password": "storebench-password",
        }))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("registering the reader failed: {status} {body}");
    }
    body["access"]
        .as_str()
        .map(str::to_owned)
        .context("register answered without an access token")
}

struct Sample {
    index: usize,
    due: Instant,
    sent: Instant,
    done: Instant,
    ok: bool,
}

pub async fn measure(
    server: &Server,
    rooms: &[BenchRoom],
    options: &HttpOptions,
    rng: &mut StdRng,
) -> anyhow::Result<HttpFigures> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.connections)
        .build()?;
    let token = register_reader(&client, &server.base).await?;
    let total = options.warmup + options.requests;
    let urls: Vec<String> = (0..total)
        .map(|_| {
            let (room, seq) = random_page(rooms, rng);
            format!(
                "{}/chat/rooms/{}/messages/?limit={}&before_seq={seq}",
                server.base, room.id, options.limit
            )
        })
        .collect();

    // Check one page before timing anything: a wrong URL or token would otherwise show up
    // as 10,000 fast errors.
    let probe = client.get(&urls[0]).bearer_auth(&token).send().await?;
    let status = probe.status();
    let page: serde_json::Value = probe.json().await?;
    if !status.is_success() || !page.is_array() {
        bail!("history request failed: {status} {page}");
    }

    // At most `connections` requests in flight, so reqwest never opens more connections.
    let slots = Arc::new(Semaphore::new(options.connections));
    let token = Arc::new(token);
    let handle = tokio::runtime::Handle::current();
    let period = Duration::from_secs_f64(1.0 / options.rate);
    let pacer = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(10);
        let mut tasks = Vec::with_capacity(urls.len());
        for (index, url) in urls.into_iter().enumerate() {
            let due = start + period * index as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let client = client.clone();
            let slots = slots.clone();
            let token = token.clone();
            tasks.push(handle.spawn(async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _slot = slots.acquire_owned().await.ok();
                let sent = Instant::now();
                let ok = match client.get(&url).bearer_auth(token.as_str()).send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        // Read the whole body: a page is only served once it has arrived.
                        response.bytes().await.is_ok() && ok
                    }
                    Err(_) => false,
                };
                Sample {
                    index,
                    due,
                    sent,
                    done: Instant::now(),
                    ok,
                }
            }));
        }
        tasks
    });
    let tasks = tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        samples.push(task.await?);
    }

    let measured: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.index >= options.warmup)
        .collect();
    let errors = measured.iter().filter(|s| !s.ok).count();
    let latency: Vec<Duration> = measured.iter().map(|s| s.done - s.due).collect();
    let service: Vec<Duration> = measured.iter().map(|s| s.done - s.sent).collect();
    let first_due = measured.iter().map(|s| s.due).min();
    let last_done = measured.iter().map(|s| s.done).max();
    let achieved_rate = match (first_due, last_done) {
        (Some(first), Some(last)) => measured.len() as f64 / (last - first).as_secs_f64(),
        _ => 0.0,
    };
    Ok(HttpFigures {
        latency: Summary::of(&latency),
        service: Summary::of(&service),
        offered_rate: options.rate,
        achieved_rate,
        errors,
        connections: options.connections,
    })
}
