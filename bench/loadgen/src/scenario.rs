//! The scenarios. Each sets up its connections, measures over a window that starts after
//! `--warmup`, lets traffic drain, and prints a JSON result.
//!
//! Rooms scenarios (`fanout`, `latency`, `slow`, `burst`) share one shape: receivers
//! (`--rooms` × `--subscribers-per-room`, receiver k in room k % rooms) each track their
//! room's seqs, senders (sender j in room j % rooms) stamp their send time into the
//! `client_id`, and only the pacing of the senders differs. `soak` is `latency` for a
//! long time with connection churn beside it, sampling the server's memory and files.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::stats::{
    Latencies, SeqTracker, Tally, now_us, open_files, rss_kib, status_kib, summary,
};
use crate::ws::{self, Frame, SendStamp, Ws};
use crate::{Scenario, Target};

pub async fn run(target: &Target) -> anyhow::Result<()> {
    let result = match target.args.scenario {
        Scenario::Idle => idle(target).await?,
        Scenario::Churn => churn(target).await?,
        Scenario::Sends => sends(target).await?,
        Scenario::Fanout
        | Scenario::Latency
        | Scenario::Slow
        | Scenario::Burst
        | Scenario::Soak => rooms(target).await?,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    println!("RESULT {result}");
    Ok(())
}

/// How senders pace themselves.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Send whenever fewer than `window` messages are in flight (closed loop).
    Window {
        window: u64,
        subscribers: u64,
        max_rate: f64,
    },
    /// Open loop: this many messages/s per sender, evenly spaced.
    Rate(f64),
    /// Every second, this many messages back to back.
    Burst(u64),
}

/// State every task of a run shares.
struct Shared {
    /// Room events received by subscribers.
    delivered: AtomicU64,
    /// Sends accepted (refused ones are taken back when their `error` arrives).
    sent: AtomicU64,
    acked: AtomicU64,
    /// Only messages sent within [measure_from, measure_to) µs count for latency.
    measure_from: AtomicU64,
    measure_to: AtomicU64,
    /// slow: messages sent from here on count for the second phase.
    phase2_from: AtomicU64,
    slow_active: AtomicBool,
    /// Send-to-receipt latency, per phase (only `slow` has a second phase).
    delivery: [Latencies; 2],
    /// Send-to-ack latency.
    ack: Latencies,
    /// The highest seq acked per room: what every subscriber must have seen at the end.
    final_seq: HashMap<i64, AtomicI64>,
    /// `error` frames by code, and connection ends by close code.
    errors: Tally,
    closes: Tally,
    stop: watch::Sender<bool>,
}

impl Shared {
    fn new(rooms: &[i64]) -> Arc<Self> {
        Arc::new(Self {
            delivered: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            measure_from: AtomicU64::new(u64::MAX),
            measure_to: AtomicU64::new(u64::MAX),
            phase2_from: AtomicU64::new(u64::MAX),
            slow_active: AtomicBool::new(false),
            delivery: [Latencies::new(), Latencies::new()],
            ack: Latencies::new(),
            final_seq: rooms.iter().map(|r| (*r, AtomicI64::new(0))).collect(),
            errors: Tally::default(),
            closes: Tally::default(),
            stop: watch::channel(false).0,
        })
    }

    fn measured(&self, sent_us: u64) -> bool {
        sent_us >= self.measure_from.load(Relaxed) && sent_us < self.measure_to.load(Relaxed)
    }

    fn phase(&self, sent_us: u64) -> usize {
        usize::from(sent_us >= self.phase2_from.load(Relaxed))
    }
}

fn close_name(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("close {}", u16::from(frame.code)),
        None => "close (no code)".to_owned(),
    }
}

/// Content of the given length (plain ASCII: no JSON escaping needed).
fn content(len: usize) -> String {
    "load generator message "
        .chars()
        .cycle()
        .take(len.max(1))
        .collect()
}

fn rss(target: &Target) -> Option<u64> {
    target.args.server_pid.and_then(|pid| rss_kib(pid).ok())
}

/// Sleeps until `at`, returning the clock's µs then.
async fn at(when: Instant) -> u64 {
    tokio::time::sleep_until(when).await;
    now_us()
}

/// Waits until the number of delivered events stops changing (for a second) and every
/// send is answered, at most `patience`.
async fn drain(shared: &Shared, patience: Duration) {
    let deadline = Instant::now() + patience;
    let mut last = u64::MAX;
    let mut still = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let delivered = shared.delivered.load(Relaxed);
        let answered = shared.acked.load(Relaxed) >= shared.sent.load(Relaxed);
        still = if delivered == last { still + 1 } else { 0 };
        last = delivered;
        if still >= 10 && answered {
            return;
        }
    }
}

/// What one receiver ends with.
struct Received {
    room: i64,
    slow: bool,
    tracker: SeqTracker,
}

async fn receive(
    mut ws: Ws,
    index: usize,
    room: i64,
    last_seq: i64,
    slow: bool,
    shared: Arc<Shared>,
) -> Received {
    let mut tracker = SeqTracker::new(last_seq);
    let mut stop = shared.stop.subscribe();
    loop {
        if *stop.borrow() {
            break;
        }
        if slow && shared.slow_active.load(Relaxed) {
            // Stop reading but keep the socket: the server's queue for us fills up.
            let _ = stop.wait_for(|stopped| *stopped).await;
            // Then see whether the server gave up on us (4008) as the contract says.
            let outcome = tokio::time::timeout(Duration::from_secs(3), async {
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Close(frame) = message {
                        return close_name(frame);
                    }
                }
                "ended without close".to_owned()
            })
            .await
            .unwrap_or_else(|_| "still open".to_owned());
            shared.closes.add(format!("slow subscriber: {outcome}"));
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    // Slow subscribers' latency is not "the others'": leave it out.
                    let index = (!slow).then_some(index);
                    on_event(&text, index, room, &mut tracker, &shared);
                }
                Some(Ok(Message::Close(frame))) => {
                    shared.closes.add(format!("receiver {}", close_name(frame)));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    shared.closes.add(format!("receiver error: {e}"));
                    break;
                }
                None => {
                    shared.closes.add("receiver: connection ended");
                    break;
                }
            },
        }
    }
    Received {
        room,
        slow,
        tracker,
    }
}

fn on_event(
    text: &str,
    index: Option<usize>,
    room: i64,
    tracker: &mut SeqTracker,
    shared: &Shared,
) {
    let Ok(frame) = Frame::parse(text) else {
        shared.errors.add("unparsable frame");
        return;
    };
    match (frame.room_id, frame.seq) {
        (Some(room_id), Some(seq)) if room_id == room => {
            tracker.observe(seq);
            shared.delivered.fetch_add(1, Relaxed);
            let sent_us = (frame.kind == "message")
                .then_some(frame.message.sent_us)
                .flatten();
            if let Some(sent_us) = sent_us
                && let Some(index) = index
                && shared.measured(sent_us)
            {
                let latency = now_us().saturating_sub(sent_us);
                shared.delivery[shared.phase(sent_us)].record(index, latency);
            }
        }
        _ if frame.kind == "error" => shared.errors.add(frame.code.unwrap_or_default()),
        // presence, subscribed, typing…: not room events.
        _ => {}
    }
}

/// What every sender of a run does: how it paces, from when until when, and what it says.
#[derive(Clone)]
struct Plan {
    pace: Pace,
    start: Instant,
    until: Instant,
    content: Arc<str>,
    /// With `Pace::Rate`: at most this many unanswered sends per sender (0: no bound),
    /// so a server that cannot keep up is measured at its capacity instead of drowned.
    in_flight: u64,
}

/// One sender: writes paced `send`s until `until`, and reads its acks until the run stops.
async fn send(ws: Ws, index: usize, room: i64, plan: Plan, shared: Arc<Shared>) {
    let Plan {
        pace,
        start,
        until,
        content,
        in_flight,
    } = plan;
    // Answers (acks and errors) to this sender's sends, for the in-flight bound.
    let (sent_here, answered) = (AtomicU64::new(0), AtomicU64::new(0));
    let answer = tokio::sync::Notify::new();
    let (mut sink, mut stream) = ws.split();
    let mut stop = shared.stop.subscribe();
    let senders_offset = Duration::from_micros((index as u64 * 7919) % 1_000_000);
    let write = async {
        let send_one = async |sink: &mut _| -> bool {
            let stamp = SendStamp {
                sender: index,
                n: sent_here.fetch_add(1, Relaxed) + 1,
                sent_us: now_us(),
            };
            let sink: &mut futures_util::stream::SplitSink<Ws, Message> = sink;
            shared.sent.fetch_add(1, Relaxed);
            sink.send(ws::send_frame(room, &content, &stamp))
                .await
                .is_ok()
        };
        match pace {
            Pace::Rate(per_second) => {
                let period = Duration::from_secs_f64(1.0 / per_second.max(0.001));
                // Spread senders over the period so the load is smooth, not pulsed.
                let offset = Duration::from_secs_f64(
                    period.as_secs_f64() * (senders_offset.as_secs_f64() % 1.0),
                );
                let mut ticks = tokio::time::interval_at(start + offset, period);
                // Open loop catches up on missed ticks; a bounded sender just goes on.
                ticks.set_missed_tick_behavior(if in_flight == 0 {
                    tokio::time::MissedTickBehavior::Burst
                } else {
                    tokio::time::MissedTickBehavior::Delay
                });
                while ticks.tick().await < until {
                    while in_flight > 0
                        && sent_here.load(Relaxed) - answered.load(Relaxed) >= in_flight
                    {
                        tokio::select! {
                            () = answer.notified() => {}
                            () = tokio::time::sleep_until(until) => return,
                        }
                    }
                    if !send_one(&mut sink).await {
                        return;
                    }
                }
            }
            Pace::Burst(size) => {
                let mut ticks = tokio::time::interval_at(start, Duration::from_secs(1));
                while ticks.tick().await < until {
                    for _ in 0..size {
                        if !send_one(&mut sink).await {
                            return;
                        }
                    }
                }
            }
            Pace::Window {
                window,
                subscribers,
                max_rate,
            } => {
                // Still at most --sender-max-rate each, so Banter's send limit never
                // refuses a sender (both targets get the same cap).
                let period = Duration::from_secs_f64(1.0 / max_rate.max(0.001));
                let mut ticks = tokio::time::interval_at(start, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while ticks.tick().await < until {
                    let in_flight = (shared.sent.load(Relaxed) * subscribers)
                        .saturating_sub(shared.delivered.load(Relaxed));
                    if in_flight >= window * subscribers {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        ticks.reset_immediately();
                        continue;
                    }
                    if !send_one(&mut sink).await {
                        return;
                    }
                }
            }
        }
    };
    let read = async {
        loop {
            let message = tokio::select! {
                _ = stop.changed() => return,
                message = stream.next() => message,
            };
            match message {
                Some(Ok(Message::Text(text))) => {
                    if on_reply(&text, room, &shared) {
                        answered.fetch_add(1, Relaxed);
                        answer.notify_one();
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    shared.closes.add(format!("sender {}", close_name(frame)));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    shared.closes.add("sender: connection ended");
                    return;
                }
            }
        }
    };
    tokio::join!(write, read);
}

/// Handles a frame on a sender's connection; true when it answers one of its sends.
fn on_reply(text: &str, room: i64, shared: &Shared) -> bool {
    let Ok(frame) = Frame::parse(text) else {
        shared.errors.add("unparsable frame");
        return false;
    };
    match frame.kind.as_ref() {
        "ack" => {
            shared.acked.fetch_add(1, Relaxed);
            if let Some(seq) = frame.message.seq
                && let Some(final_seq) = shared.final_seq.get(&room)
            {
                final_seq.fetch_max(seq, Relaxed);
            }
            if let Some(sent_us) = frame.message.sent_us
                && shared.measured(sent_us)
            {
                shared
                    .ack
                    .record(room as usize, now_us().saturating_sub(sent_us));
            }
            true
        }
        "error" => {
            shared.errors.add(frame.code.unwrap_or_default());
            // A refused send will never be delivered: take it out of the in-flight count.
            shared.sent.fetch_sub(1, Relaxed);
            true
        }
        _ => false,
    }
}

/// Connects senders (in parallel) as ready connections.
async fn connect_senders(target: &Target, count: usize) -> anyhow::Result<Vec<Ws>> {
    let connections = futures_util::future::join_all((0..count).map(|j| async move {
        let endpoint = target.sender(j).await?;
        ws::connect(&endpoint, target.source(j)).await
    }))
    .await;
    connections
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .context("connecting senders")
}

async fn rooms(target: &Target) -> anyhow::Result<Value> {
    let args = &target.args;
    let senders = args.senders.max(1);
    let rooms = target.rooms(args.rooms.max(1), senders).await?;
    let shared = Shared::new(&rooms);
    let rss_before = rss(target);

    // Receivers connect and subscribe, a bounded number at a time.
    let total = rooms.len() * args.subscribers_per_room;
    let slow_count = if args.scenario == Scenario::Slow {
        ((total as f64 * args.slow_percent / 100.0).round() as usize).min(total)
    } else {
        0
    };
    let slow_every = total.checked_div(slow_count).unwrap_or(usize::MAX);
    let setup = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let started = Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(1024);
    let mut receivers = Vec::with_capacity(total);
    for k in 0..total {
        let room = rooms[k % rooms.len()];
        let endpoint = target.receiver(k).await?;
        let source = target.source(k);
        let (setup, shared, ready) = (setup.clone(), shared.clone(), ready_tx.clone());
        let slow = slow_every != usize::MAX && k % slow_every == 0 && k / slow_every < slow_count;
        receivers.push(tokio::spawn(async move {
            let connected = async {
                let _permit = setup.acquire().await?;
                let mut ws = ws::connect(&endpoint, source).await?;
                let last_seq = ws::subscribe(&mut ws, room).await?;
                anyhow::Ok((ws, last_seq))
            }
            .await;
            match connected {
                Ok((ws, last_seq)) => {
                    let _ = ready.send(Ok(())).await;
                    Some(receive(ws, k, room, last_seq, slow, shared).await)
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    None
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..total {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("a receiver could not connect: {e:#}"),
            None => break,
        }
    }
    eprintln!(
        "{total} receivers subscribed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_connected = rss(target);

    let connections = connect_senders(target, senders).await?;
    let per_sender = args.rate / senders as f64;
    let pace = match args.scenario {
        Scenario::Fanout => Pace::Window {
            window: args.window.max(1),
            subscribers: args.subscribers_per_room as u64,
            max_rate: args.sender_max_rate,
        },
        Scenario::Burst => Pace::Burst(args.burst),
        _ => Pace::Rate(per_sender),
    };
    if matches!(pace, Pace::Rate(_)) && per_sender > args.sender_max_rate && !args.raw {
        eprintln!(
            "warning: {per_sender:.1} messages/s per sender is over --sender-max-rate; \
             Banter may refuse sends (rate_limited): add --senders"
        );
    }
    let phases = if args.scenario == Scenario::Slow {
        2.0
    } else {
        1.0
    };
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration * phases);
    let content: Arc<str> = content(args.message_bytes).into();
    let mut sending = Vec::new();
    for (j, ws) in connections.into_iter().enumerate() {
        sending.push(tokio::spawn(send(
            ws,
            j,
            rooms[j % rooms.len()],
            Plan {
                pace,
                start,
                until,
                content: content.clone(),
                in_flight: args.in_flight,
            },
            shared.clone(),
        )));
    }

    let soak = if args.scenario == Scenario::Soak {
        Some(Soak::start(target, start, until).await?)
    } else {
        None
    };

    // Measure: counters at the window's edges, latency by send time inside it.
    let from_us = at(measure_from).await;
    shared.measure_from.store(from_us, Relaxed);
    let (delivered_0, acked_0) = (shared.delivered.load(Relaxed), shared.acked.load(Relaxed));
    let mut phase_counts = Vec::new();
    if args.scenario == Scenario::Slow {
        let split = at(measure_from + Duration::from_secs_f64(args.duration)).await;
        shared.phase2_from.store(split, Relaxed);
        shared.slow_active.store(true, Relaxed);
        phase_counts.push(shared.delivered.load(Relaxed));
    }
    let to_us = at(until).await;
    shared.measure_to.store(to_us, Relaxed);
    let seconds = (to_us - from_us) as f64 / 1e6;
    let delivered = shared.delivered.load(Relaxed) - delivered_0;
    let acked = shared.acked.load(Relaxed) - acked_0;
    let rss_loaded = rss(target);
    let soak = match soak {
        Some(soak) => Some(soak.finish().await?),
        None => None,
    };

    drain(&shared, Duration::from_secs(20)).await;
    let _ = shared.stop.send(true);
    for task in sending {
        task.await?;
    }
    let mut results = Vec::with_capacity(total);
    for task in receivers {
        if let Some(received) = task.await? {
            results.push(received);
        }
    }

    // Every subscriber must have seen every seq up to its room's final one.
    let mut final_seq: HashMap<i64, i64> = shared
        .final_seq
        .iter()
        .map(|(room, seq)| (*room, seq.load(Relaxed)))
        .collect();
    for received in &results {
        let seq = final_seq.entry(received.room).or_default();
        *seq = (*seq).max(received.tracker.max_seen());
    }
    let (mut lost, mut duplicated, mut out_of_order, mut checked) = (0, 0, 0, 0);
    for received in results.iter().filter(|r| !r.slow) {
        checked += 1;
        lost += received.tracker.lost(final_seq[&received.room]);
        duplicated += received.tracker.duplicated;
        out_of_order += received.tracker.out_of_order;
    }

    let mut result = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "target": if args.raw { "raw" } else { "banter" },
        "urls": args.url,
        "rooms": rooms.len(),
        "subscribers_per_room": args.subscribers_per_room,
        "senders": senders,
        "seconds": seconds,
        "delivered_per_s": (delivered as f64 / seconds).round(),
        "messages_acked_per_s": (acked as f64 / seconds).round(),
        "latency": summary(&shared.delivery[0].merged()),
        "ack_latency": summary(&shared.ack.merged()),
        "subscribers_checked": checked,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "errors": shared.errors.snapshot(),
        "closes": shared.closes.snapshot(),
        "server_rss_kib": {"before": rss_before, "connected": rss_connected, "loaded": rss_loaded},
    });
    match pace {
        Pace::Window { window, .. } => result["window"] = json!(window),
        Pace::Rate(_) => result["rate"] = json!(args.rate),
        Pace::Burst(size) => result["burst"] = json!(size),
    }
    if let Some(soak) = soak {
        result["soak"] = soak;
    }
    if args.scenario == Scenario::Slow {
        let phase1 = summary(&shared.delivery[0].merged());
        let phase2 = summary(&shared.delivery[1].merged());
        let p99 = |s: &Value| s["p99_ms"].as_f64().unwrap_or(0.0);
        result["slow_subscribers"] = json!(slow_count);
        result["latency_all_reading"] = phase1.clone();
        result["latency_with_slow"] = phase2.clone();
        result["p99_rise_percent"] =
            json!(((p99(&phase2) / p99(&phase1).max(1e-9) - 1.0) * 1000.0).round() / 10.0);
    }
    Ok(result)
}

/// Holds `--connections` authenticated connections; reports server memory per connection.
async fn idle(target: &Target) -> anyhow::Result<Value> {
    let args = &target.args;
    let count = args.connections;
    let rss_before = rss(target);
    let shared = Shared::new(&[]);
    let setup = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let open = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(1024);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let endpoint = target.receiver(i).await?;
        let source = target.source(i);
        let (setup, shared, ready, open) = (
            setup.clone(),
            shared.clone(),
            ready_tx.clone(),
            open.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let connected = async {
                let _permit = setup.acquire().await?;
                ws::connect(&endpoint, source).await
            }
            .await;
            let mut ws = match connected {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return;
                }
            };
            open.fetch_add(1, Relaxed);
            let _ = ready.send(Ok(())).await;
            drop(ready);
            // Read (and so answer pings) until told to stop.
            let mut stop = shared.stop.subscribe();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    message = ws.next() => match message {
                        Some(Ok(Message::Close(frame))) => {
                            shared.closes.add(close_name(frame));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            shared.closes.add("connection ended");
                            break;
                        }
                    },
                }
            }
            open.fetch_sub(1, Relaxed);
        }));
    }
    drop(ready_tx);
    let failures = Tally::default();
    let mut done = 0;
    while let Some(outcome) = ready_rx.recv().await {
        done += 1;
        if let Err(e) = outcome {
            failures.add(format!("{e:#}"));
        }
        if done % 5000 == 0 {
            eprintln!("{done} of {count} connections set up");
        }
    }
    let setup_seconds = started.elapsed().as_secs_f64();
    let connected = open.load(Relaxed);
    // Let allocations settle (and lazily freed buffers go) before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = rss(target);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let rss_held = rss(target);
    let still_open = open.load(Relaxed);
    let _ = shared.stop.send(true);
    for task in tasks {
        task.await?;
    }
    let per_connection = match (rss_before, rss_held) {
        (Some(before), Some(after)) if connected > 0 => {
            Some(((after as f64 - before as f64) * 1024.0 / connected as f64).round())
        }
        _ => None,
    };
    let failures = failures.snapshot();
    Ok(json!({
        "scenario": "idle",
        "target": if args.raw { "raw" } else { "banter" },
        "connections_asked": count,
        "connected": connected,
        "still_open_after_hold": still_open,
        "setup_seconds": setup_seconds,
        "held_seconds": args.duration,
        "failures": failures,
        "closes": shared.closes.snapshot(),
        "server_rss_kib": {"before": rss_before, "connected": rss_connected, "held": rss_held},
        "server_bytes_per_connection": per_connection,
        "loadgen_rss_kib": rss_kib(std::process::id()).ok(),
    }))
}

/// Connect, wait for `ready`, close; `--connections` workers in a loop.
async fn churn(target: &Target) -> anyhow::Result<Value> {
    let args = &target.args;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let churners = Churners::start(
        target,
        args.connections,
        Duration::ZERO,
        measure_from,
        until,
    )
    .await?;
    let (completed, latencies, failures) = churners.finish().await?;
    Ok(json!({
        "scenario": "churn",
        "target": if args.raw { "raw" } else { "banter" },
        "workers": args.connections,
        "seconds": args.duration,
        "connects_per_s": (completed as f64 / args.duration).round(),
        "connect_latency": summary(&latencies.merged()),
        "failures": failures.snapshot(),
    }))
}

/// Workers that connect (until `ready`), close and start over, until `until`.
struct Churners {
    workers: Vec<tokio::task::JoinHandle<()>>,
    latencies: Arc<Latencies>,
    completed: Arc<AtomicU64>,
    failures: Arc<Tally>,
}

impl Churners {
    async fn start(
        target: &Target,
        count: usize,
        pause: Duration,
        measure_from: Instant,
        until: Instant,
    ) -> anyhow::Result<Self> {
        let args = &target.args;
        let latencies = Arc::new(Latencies::new());
        let completed = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Tally::default());
        let next = Arc::new(AtomicU64::new(0));
        // Endpoints are resolved once: each worker cycles through users and URLs.
        let mut endpoints = Vec::new();
        for i in 0..target.users.len().max(args.url.len()).max(1) {
            endpoints.push(target.receiver(i).await?);
        }
        let endpoints = Arc::new(endpoints);
        let mut workers = Vec::new();
        for w in 0..count.max(1) {
            let (latencies, completed, failures, next, endpoints) = (
                latencies.clone(),
                completed.clone(),
                failures.clone(),
                next.clone(),
                endpoints.clone(),
            );
            let sources = args.sources;
            workers.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let i = next.fetch_add(1, Relaxed) as usize;
                    let endpoint = &endpoints[i % endpoints.len()];
                    let source = (sources > 1).then(|| {
                        std::net::IpAddr::from([127, 0, 0, 1 + (i % usize::from(sources)) as u8])
                    });
                    let began = Instant::now();
                    match ws::connect(endpoint, source).await {
                        Ok(mut ws) => {
                            if began >= measure_from {
                                latencies.record(w, began.elapsed().as_micros() as u64);
                                completed.fetch_add(1, Relaxed);
                            }
                            // A clean close: the server ends the TCP connection, so the
                            // TIME_WAIT lands on its side, not on our ephemeral ports.
                            let _ = ws.close(None).await;
                            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                while let Some(Ok(_)) = ws.next().await {}
                            })
                            .await;
                        }
                        Err(e) => {
                            failures.add(format!("{e:#}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }));
        }
        Ok(Self {
            workers,
            latencies,
            completed,
            failures,
        })
    }

    async fn finish(self) -> anyhow::Result<(u64, Arc<Latencies>, Arc<Tally>)> {
        for worker in self.workers {
            worker.await?;
        }
        Ok((self.completed.load(Relaxed), self.latencies, self.failures))
    }
}

/// What a soak adds to the latency traffic: churn, and samples of the server's resources.
struct Soak {
    churners: Churners,
    sampler: tokio::task::JoinHandle<Vec<Value>>,
    seconds: f64,
}

impl Soak {
    async fn start(target: &Target, start: Instant, until: Instant) -> anyhow::Result<Self> {
        let args = &target.args;
        let pid = args.server_pid;
        let every = Duration::from_secs_f64(args.sample_every.max(1.0));
        let seconds = until.duration_since(start).as_secs_f64();
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut when = start;
            while when <= until {
                tokio::time::sleep_until(when).await;
                let elapsed = when.duration_since(start).as_secs_f64().round();
                let rss = pid.and_then(|pid| rss_kib(pid).ok());
                // Anonymous memory alone: file pages (the database, mapped) excluded.
                let anon = pid.and_then(|pid| status_kib(pid, "RssAnon").ok());
                let files = pid.and_then(|pid| open_files(pid).ok());
                eprintln!(
                    "soak t={elapsed:.0}s server rss={rss:?} KiB (anonymous {anon:?}) open files={files:?}"
                );
                samples.push(json!({"t_s": elapsed, "rss_kib": rss, "rss_anon_kib": anon, "open_files": files}));
                when += every;
            }
            samples
        });
        let churners = Churners::start(
            target,
            args.churn_workers,
            Duration::from_millis(args.churn_pause_ms),
            start,
            until,
        )
        .await?;
        Ok(Self {
            churners,
            sampler,
            seconds,
        })
    }

    /// Samples, churn figures, and growth from the first sample after warm-up (a
    /// fifth of the run, at least one sample in) to the last.
    async fn finish(self) -> anyhow::Result<Value> {
        let (completed, latencies, failures) = self.churners.finish().await?;
        let samples = self.sampler.await?;
        let warm = (samples.len() / 5)
            .max(1)
            .min(samples.len().saturating_sub(1));
        let growth = |key: &str| {
            let at = |i: usize| samples.get(i).and_then(|s| s[key].as_f64());
            match (at(warm), samples.len().checked_sub(1).and_then(at)) {
                (Some(first), Some(last)) if first > 0.0 => {
                    json!(((last / first - 1.0) * 1000.0).round() / 10.0)
                }
                _ => Value::Null,
            }
        };
        Ok(json!({
            "churn_connects_per_s": (completed as f64 / self.seconds).round(),
            "churn_connect_latency": summary(&latencies.merged()),
            "churn_failures": failures.snapshot(),
            "warm_sample": warm,
            "rss_growth_percent": growth("rss_kib"),
            "rss_anon_growth_percent": growth("rss_anon_kib"),
            "open_files_growth_percent": growth("open_files"),
            "samples": samples,
        }))
    }
}

/// Durable sends: senders only, open loop at `--rate`, counting acks.
async fn sends(target: &Target) -> anyhow::Result<Value> {
    let args = &target.args;
    let senders = args.senders.max(1);
    let per_sender = args.rate / senders as f64;
    if per_sender > args.sender_max_rate && !args.raw {
        eprintln!(
            "warning: {per_sender:.1} sends/s per connection is over --sender-max-rate; \
             Banter refuses over 20/s per connection: add --senders"
        );
    }
    let rooms = target.rooms(args.rooms.max(1), senders).await?;
    let shared = Shared::new(&rooms);
    let connections = connect_senders(target, senders).await?;
    eprintln!("{senders} senders connected");
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let content: Arc<str> = content(args.message_bytes).into();
    let mut tasks = Vec::new();
    for (j, ws) in connections.into_iter().enumerate() {
        tasks.push(tokio::spawn(send(
            ws,
            j,
            rooms[j % rooms.len()],
            Plan {
                pace: Pace::Rate(per_sender),
                start,
                until,
                content: content.clone(),
                in_flight: args.in_flight,
            },
            shared.clone(),
        )));
    }
    let from_us = at(measure_from).await;
    shared.measure_from.store(from_us, Relaxed);
    let (acked_0, sent_0) = (shared.acked.load(Relaxed), shared.sent.load(Relaxed));
    let to_us = at(until).await;
    shared.measure_to.store(to_us, Relaxed);
    let seconds = (to_us - from_us) as f64 / 1e6;
    let acked = shared.acked.load(Relaxed) - acked_0;
    let sent = shared.sent.load(Relaxed) - sent_0;
    drain(&shared, Duration::from_secs(30)).await;
    let unanswered = shared
        .sent
        .load(Relaxed)
        .saturating_sub(shared.acked.load(Relaxed));
    let _ = shared.stop.send(true);
    for task in tasks {
        task.await?;
    }
    Ok(json!({
        "scenario": "sends",
        "target": if args.raw { "raw" } else { "banter" },
        "senders": senders,
        "rooms": rooms.len(),
        "offered_per_s": args.rate,
        "in_flight_per_sender": args.in_flight,
        "seconds": seconds,
        "sent_per_s": (sent as f64 / seconds).round(),
        "acked_per_s": (acked as f64 / seconds).round(),
        "ack_latency": summary(&shared.ack.merged()),
        "unanswered_at_end": unanswered,
        "errors": shared.errors.snapshot(),
        "closes": shared.closes.snapshot(),
    }))
}
