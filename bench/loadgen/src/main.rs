//! `loadgen`: the real-time load generator for Banter, speaking only the wire contract
//! (HTTP to register users and create rooms, `/ws/` for everything measured).
//!
//! Scenarios (`--scenario`):
//! - `idle`: open `--connections` authenticated WebSockets and hold them; with
//!   `--server-pid`, report the server's RSS growth per connection (from /proc).
//! - `fanout`: `--rooms` rooms of `--subscribers-per-room` subscribers; `--senders`
//!   keep at most `--window` messages in flight (sent, not yet delivered to everyone),
//!   which drives the server to saturation without overflowing its queues.
//! - `latency`: the same rooms with an open-loop `--rate` of messages/s (use half the
//!   fan-out saturation rate).
//! - `slow`: `latency`, then `--slow-percent` of subscribers stop reading; compares the
//!   others' latency before and after.
//! - `burst`: every second each sender sends `--burst` messages back to back.
//! - `sends`: durable sends only: `--rate` messages/s over `--senders` connections,
//!   measuring acks/s and send-to-ack latency.
//! - `churn`: `--connections` workers connect, wait for `ready` and close, in a loop.
//!
//! Every scenario prints a summary and a `RESULT {json}` line. `--url` takes one or more
//! base URLs (connections spread round-robin; `--sender-url` puts senders elsewhere, for
//! cross-node latency). `--raw` targets the raw broadcast baseline (bench/raw-broadcast):
//! no registration, no rooms over HTTP.
//!
//! `bench/loadgen/run-all.sh` runs every scenario against both servers, as recorded in
//! docs/BENCHMARKS.md ("Real time").

mod api;
mod scenario;
mod stats;
mod ws;

use std::net::IpAddr;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

use crate::api::{Api, User};
use crate::ws::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Idle,
    Fanout,
    Latency,
    Slow,
    Burst,
    Sends,
    Churn,
    /// `latency` traffic plus connect/close churn for `--duration`, sampling the server's
    /// memory and open files every `--sample-every` seconds.
    Soak,
}

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Real-time load generator for Banter's /ws/ contract"
)]
pub struct Args {
    /// Base URLs of the server(s), e.g. http://127.0.0.1:8000 (repeatable or
    /// comma-separated); connections are spread over them round-robin.
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// Base URLs for the senders (default: --url), to measure across cluster nodes.
    #[arg(long, value_delimiter = ',')]
    pub sender_url: Vec<String>,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// The target is the raw broadcast baseline: skip registration and HTTP setup.
    #[arg(long)]
    pub raw: bool,
    /// idle: connections to open; churn: concurrent connect/close workers.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    #[arg(long, default_value_t = 4)]
    pub rooms: usize,
    #[arg(long, default_value_t = 1000)]
    pub subscribers_per_room: usize,
    /// Sending connections (each on its own user while the pool lasts).
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// latency/slow/sends: messages per second, all senders together.
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,
    /// Cap on each sender's messages/s; Banter refuses more than 20/s per connection.
    #[arg(long, default_value_t = 18.0)]
    pub sender_max_rate: f64,
    /// fanout: messages in flight (sent but not yet delivered to every subscriber).
    #[arg(long, default_value_t = 50)]
    pub window: u64,
    /// Unanswered sends each sender may have (0: open loop). With it, `sends` measures
    /// the server's capacity rather than how it drowns.
    #[arg(long, default_value_t = 0)]
    pub in_flight: u64,
    /// burst: messages each sender sends back to back every second.
    #[arg(long, default_value_t = 10)]
    pub burst: u64,
    /// Measured seconds (slow: per phase; idle: how long connections are held).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of traffic before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// slow: percent of subscribers that stop reading in the second phase.
    #[arg(long, default_value_t = 1.0)]
    pub slow_percent: f64,
    /// Users to register (connections share them; senders need one per two).
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Server process id, to read its VmRSS from /proc before and after.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connect from 127.0.0.1 … 127.0.0.N (each source address has its own ports).
    #[arg(long, default_value_t = 1)]
    pub sources: u8,
    /// Connections set up at once.
    #[arg(long, default_value_t = 200)]
    pub setup_concurrency: usize,
    /// Characters of message content.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// soak: connect/close workers running beside the traffic.
    #[arg(long, default_value_t = 4)]
    pub churn_workers: usize,
    /// soak: each churn worker's pause between connections, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub churn_pause_ms: u64,
    /// soak: seconds between samples of the server's memory and open files.
    #[arg(long, default_value_t = 60.0)]
    pub sample_every: f64,
}

/// What every scenario starts from: the targets, the users and where to connect.
pub struct Target {
    pub args: Args,
    /// One API client per receiver URL (the first creates rooms).
    apis: Vec<Api>,
    pub users: Vec<User>,
    receivers: Vec<String>,
    senders: Vec<String>,
    pub run_id: String,
}

impl Target {
    async fn prepare(args: Args) -> anyhow::Result<Self> {
        if args.url.is_empty() {
            bail!("give at least one --url");
        }
        let run_id = format!(
            "{:x}",
            std::time::UNIX_EPOCH.elapsed()?.as_millis() % 0xff_ffff
        );
        let apis = args
            .url
            .iter()
            .map(|url| Api::new(url))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let users = if args.raw {
            Vec::new()
        } else {
            // Senders need a user per two connections to stay under Banter's per-user
            // send limit (40/s) at up to 18/s per connection.
            let count = args.users.max(args.senders.div_ceil(2)).max(1);
            let started = std::time::Instant::now();
            let users = apis[0]
                .register_pool(count, &run_id)
                .await
                .context("registering the user pool")?;
            eprintln!(
                "registered {count} users in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            users
        };
        let senders = if args.sender_url.is_empty() {
            args.url.clone()
        } else {
            args.sender_url.clone()
        };
        Ok(Self {
            receivers: args.url.clone(),
            senders,
            apis,
            users,
            run_id,
            args,
        })
    }

    /// Where the `i`th receiving (or idle) connection goes, as which user.
    pub async fn receiver(&self, i: usize) -> anyhow::Result<Endpoint> {
        self.endpoint(&self.receivers, i, i).await
    }

    /// Where the `j`th sender goes; senders take users from the pool's start.
    pub async fn sender(&self, j: usize) -> anyhow::Result<Endpoint> {
        self.endpoint(&self.senders, j, j / 2).await
    }

    async fn endpoint(&self, urls: &[String], i: usize, user: usize) -> anyhow::Result<Endpoint> {
        let token = self.user(user).map(|u| u.token.as_str());
        Endpoint::new(&urls[i % urls.len()], token).await
    }

    pub fn user(&self, i: usize) -> Option<&User> {
        (!self.users.is_empty()).then(|| &self.users[i % self.users.len()])
    }

    /// The source address for the `i`th connection, when spreading over several.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        (self.args.sources > 1)
            .then(|| IpAddr::from([127, 0, 0, 1 + (i % usize::from(self.args.sources)) as u8]))
    }

    /// Rooms for a run: created over HTTP, with the senders joined; the raw baseline
    /// just uses numbers.
    pub async fn rooms(&self, count: usize, senders: usize) -> anyhow::Result<Vec<i64>> {
        if self.args.raw {
            let base = std::process::id() as i64 * 1000;
            return Ok((0..count as i64).map(|r| base + r).collect());
        }
        let owner = self.user(0).context("no users")?;
        let mut rooms = Vec::with_capacity(count);
        for r in 0..count {
            let name = format!("lg-{}-{r}", self.run_id);
            rooms.push(self.apis[0].create_room(owner, &name).await?);
        }
        // Each sending user joins the rooms it sends to (sender j → room j % count).
        let mut joined = std::collections::HashSet::new();
        for j in 0..senders {
            let (user, room) = (j / 2, rooms[j % count]);
            if user % self.users.len() != 0 && joined.insert((user % self.users.len(), room)) {
                let api = &self.apis[j % self.apis.len()];
                api.join(self.user(user).context("no users")?, room).await?;
            }
        }
        Ok(rooms)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
    runtime.block_on(async {
        let target = Target::prepare(args).await?;
        scenario::run(&target).await
    })
}
