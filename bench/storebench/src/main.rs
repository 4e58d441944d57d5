//! `storebench`: Banter's storage benchmark, on SQLite or PostgreSQL.
//!
//! What it measures, in order:
//! 1. **Fill**: users, rooms and memberships through the `Store` trait, then (unless
//!    `--skip-fill`) millions of messages written with bulk SQL straight into the schema
//!    (multi-row INSERTs on SQLite, COPY on PostgreSQL), with their `room_events` rows,
//!    `rooms.last_seq` and read markers, so the database is what the server would have
//!    written had the messages been posted one by one (see [`fill`]).
//! 2. **Pages in the database**: random 50-message history pages (random room, random
//!    `before_seq`) through `Store::history_page`, one at a time, then the same with
//!    OFFSET paging at a fixed depth on a pool configured like the store's (see [`pages`]).
//! 3. **Pages over HTTP**: the same kind of page from a real Banter server started in this
//!    process, at a fixed open-loop request rate (see [`http`]).
//! 4. **Inserts**: `Store::post_message`, the durable one-transaction-per-message write
//!    path, from concurrent tasks, or with `--batch-size`, `Store::post_messages` one
//!    batch at a time, as the server's group-commit writer stores sends (see [`insert`]).
//!
//! It ends with a markdown table of the figures and the machine they came from.
//! Latencies are wall-clock times measured in this process, which also runs the server:
//! on a small machine the benchmark's own work competes with the server for the CPUs.

mod cpu;
mod fill;
mod http;
mod insert;
mod pages;
mod stats;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::fill::FillOptions;
use crate::pages::RawPool;
use crate::stats::ms;

#[derive(Debug, Parser)]
#[command(about = "Banter storage benchmark: fill, history page latency, insert throughput")]
struct Args {
    /// `sqlite:///tmp/bench.db` or `postgres://user@host/db`.
    #[arg(long)]
    database_url: String,
    /// Rooms to create and fill.
    #[arg(long, default_value_t = 1000)]
    rooms: usize,
    /// Messages in all, spread evenly over the rooms.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Users to create; each room has `--members-per-room` of them as authors.
    #[arg(long, default_value_t = 100)]
    users: usize,
    #[arg(long, default_value_t = 5)]
    members_per_room: usize,
    /// Reuse a database filled by an earlier run.
    #[arg(long)]
    skip_fill: bool,
    /// Random pages to time in the database (each way) and over HTTP.
    #[arg(long, default_value_t = 10_000)]
    pages: usize,
    /// Unrecorded pages before each measurement, to warm caches and connections.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    #[arg(long, default_value_t = 50)]
    page_size: i64,
    /// OFFSET of the comparison query.
    #[arg(long, default_value_t = 5_000)]
    offset_depth: i64,
    /// Offered HTTP request rate (requests/s, open loop).
    #[arg(long, default_value_t = 2000.0)]
    http_rate: f64,
    /// HTTP requests to time (default: `--pages`).
    #[arg(long)]
    http_requests: Option<usize>,
    /// At most this many HTTP requests in flight (= connections).
    #[arg(long, default_value_t = 16)]
    http_connections: usize,
    /// Messages to post in the insert measurement (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    inserts: usize,
    #[arg(long, default_value_t = 8)]
    insert_tasks: usize,
    /// Post the inserts in batches of this many through `Store::post_messages`, one
    /// batch at a time (the server's writer takes up to 4,096 on SQLite, 1,024 on
    /// PostgreSQL), instead of one message per call from `--insert-tasks` tasks.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    #[arg(long)]
    skip_http: bool,
    /// Seed for room choice, pages and generated text.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the markdown report to this file.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            bail!("--database-url must start with sqlite: or postgres://")
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// The issue's goal for DB page p99.
    fn page_p99_goal(self) -> Duration {
        match self {
            Backend::Sqlite => Duration::from_millis(2),
            Backend::Postgres => Duration::from_millis(5),
        }
    }
}

/// A filled room: its id, newest seq and members (the authors of its messages).
#[derive(Debug, Clone)]
pub struct BenchRoom {
    pub id: i64,
    pub last_seq: i64,
    pub members: Vec<i64>,
}

const HTTP_P99_GOAL: Duration = Duration::from_millis(10);
const OFFSET_RATIO_GOAL: f64 = 10.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = Backend::of(&args.database_url)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    eprintln!("storebench on {} ({command_line})", backend.name());

    let load_at_start = cpu::load_average();
    let store = banter::store::connect(&args.database_url).await?;
    let existing = fill::existing_rooms(&store).await?;
    let (rooms, fill_report) = if args.skip_fill {
        if existing.is_empty() {
            bail!("--skip-fill, but the database has no bench rooms: run once without it");
        }
        eprintln!("reusing {} filled rooms", existing.len());
        (existing, None)
    } else {
        if !existing.is_empty() {
            bail!(
                "the database already holds {} bench rooms: use --skip-fill, or start from an empty database",
                existing.len()
            );
        }
        let options = FillOptions {
            rooms: args.rooms,
            messages: args.messages,
            users: args.users,
            members_per_room: args.members_per_room,
            seed: args.seed,
        };
        eprintln!(
            "setup: {} users, {} rooms, {} members each, through the Store trait",
            options.users, options.rooms, options.members_per_room
        );
        let setup_started = Instant::now();
        let mut rooms = fill::setup(&store, &options, &mut rng).await?;
        let setup = setup_started.elapsed();
        eprintln!("setup took {:.1} s", setup.as_secs_f64());
        // The fill writes on its own connection; the store's pools stay idle meanwhile.
        eprintln!("fill: {} messages with bulk SQL", options.messages);
        let bulk = fill::bulk_fill(
            backend,
            &args.database_url,
            &mut rooms,
            options.messages,
            options.seed,
        )
        .await?;
        eprintln!(
            "fill took {:.1} s ({:.0} msgs/s)",
            bulk.as_secs_f64(),
            options.messages as f64 / bulk.as_secs_f64()
        );
        (
            rooms,
            Some(fill::FillReport {
                setup,
                bulk,
                rows: options.messages,
            }),
        )
    };

    let pool = RawPool::open(backend, &args.database_url).await?;
    let info = database_info(backend, &args.database_url, &pool).await?;
    eprintln!("database: {}", info.summary);

    let sample_room = rooms.first().context("no rooms")?;
    let plans = format!(
        "keyset:\n    {}\nOFFSET {}:\n    {}",
        pool.explain(
            &pages::keyset_sql(),
            sample_room.id,
            args.page_size,
            sample_room.last_seq / 2
        )
        .await?
        .join("\n    "),
        args.offset_depth,
        pool.explain(
            &pages::offset_sql(),
            sample_room.id,
            args.page_size,
            args.offset_depth
        )
        .await?
        .join("\n    ")
    );
    eprintln!("query plans (room {}):\n{plans}", sample_room.id);

    eprintln!(
        "pages in the database: {} each way after {} warm-up",
        args.pages, args.warmup
    );
    let pages_cpu = cpu::Snapshot::take();
    let page_figures = pages::measure(
        &store,
        &pool,
        &rooms,
        &pages::PageOptions {
            pages: args.pages,
            warmup: args.warmup,
            limit: args.page_size,
            offset_depth: args.offset_depth,
        },
        &mut rng,
    )
    .await?;
    eprintln!(
        "  Store::history_page: {}",
        page_figures.store_keyset.line()
    );
    eprintln!("  keyset, raw SQL:      {}", page_figures.raw_keyset.line());
    eprintln!(
        "  OFFSET {}:          {}",
        args.offset_depth,
        page_figures.offset.line()
    );
    let pages_cpu = cpu::Snapshot::take().usage_since(&pages_cpu);
    eprintln!("  CPU: {pages_cpu}");
    pool.close().await;

    let http_figures = if args.skip_http {
        None
    } else {
        let http_requests = args.http_requests.unwrap_or(args.pages);
        eprintln!(
            "pages over HTTP: {http_requests} requests at {} /s open loop, {} connections",
            args.http_rate, args.http_connections
        );
        let server = http::Server::start(&args.database_url).await?;
        let started = cpu::Snapshot::take();
        let figures = http::measure(
            &server,
            &rooms,
            &http::HttpOptions {
                rate: args.http_rate,
                requests: http_requests,
                warmup: args.warmup,
                connections: args.http_connections,
                limit: args.page_size,
            },
            &mut rng,
        )
        .await?;
        let usage = cpu::Snapshot::take().usage_since(&started);
        server.stop().await?;
        eprintln!(
            "  latency from due time: {}\n  service time:          {}\n  achieved {:.0} /s, {} errors",
            figures.latency.line(),
            figures.service.line(),
            figures.achieved_rate,
            figures.errors
        );
        eprintln!("  CPU: {usage}");
        Some((figures, usage))
    };

    let insert_figures = if args.inserts == 0 {
        None
    } else {
        let started = cpu::Snapshot::take();
        let figures = if args.batch_size > 1 {
            eprintln!(
                "inserts: {} messages in post_messages batches of {}",
                args.inserts, args.batch_size
            );
            insert::measure_batches(&store, &rooms, args.inserts, args.batch_size, args.seed)
                .await?
        } else {
            eprintln!(
                "inserts: {} post_message calls from {} tasks",
                args.inserts, args.insert_tasks
            );
            insert::measure(
                &store,
                &rooms,
                args.inserts,
                args.insert_tasks.max(1),
                args.seed,
            )
            .await?
        };
        let per = if figures.batch_size > 1 {
            "batch"
        } else {
            "message"
        };
        eprintln!(
            "  {:.0} msgs/s; per {per} {}",
            figures.per_second,
            figures.latency.line()
        );
        let usage = cpu::Snapshot::take().usage_since(&started);
        eprintln!("  CPU: {usage}");
        Some((figures, usage))
    };

    let report = render_report(&Report {
        backend,
        command_line,
        args: &args,
        info: &info,
        fill: fill_report.as_ref(),
        pages: &page_figures,
        pages_cpu,
        http: http_figures.as_ref(),
        insert: insert_figures.as_ref(),
        load_at_start,
        plans: &plans,
    });
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

struct DatabaseInfo {
    summary: String,
    messages: i64,
}

async fn database_info(
    backend: Backend,
    url: &str,
    pool: &RawPool,
) -> anyhow::Result<DatabaseInfo> {
    let count_sql = "SELECT COUNT(*) FROM messages";
    Ok(match pool {
        RawPool::Sqlite(pool) => {
            let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(pool)
                .await?;
            let messages: i64 = sqlx::query_scalar(count_sql).fetch_one(pool).await?;
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default();
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            DatabaseInfo {
                summary: format!(
                    "{} {version}, {messages} messages, file {:.2} GB, WAL, synchronous=FULL",
                    backend.name(),
                    size as f64 / 1e9
                ),
                messages,
            }
        }
        RawPool::Postgres(pool) => {
            let version: String = sqlx::query_scalar("SHOW server_version")
                .fetch_one(pool)
                .await?;
            let messages: i64 = sqlx::query_scalar(count_sql).fetch_one(pool).await?;
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await?;
            let mut settings = Vec::new();
            for name in ["shared_buffers", "synchronous_commit", "fsync"] {
                let value: String = sqlx::query_scalar(&format!("SHOW {name}"))
                    .fetch_one(pool)
                    .await?;
                settings.push(format!("{name}={value}"));
            }
            DatabaseInfo {
                summary: format!(
                    "{} {version}, {messages} messages, database {:.2} GB, {}",
                    backend.name(),
                    size as f64 / 1e9,
                    settings.join(", ")
                ),
                messages,
            }
        }
    })
}

/// `nproc`, CPU model, memory and date, for the report header.
fn machine_info() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gb = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!(
        "{cpus} CPUs (nproc), {model}, {mem_gb:.0} GiB RAM, {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}

struct Report<'a> {
    backend: Backend,
    command_line: String,
    args: &'a Args,
    info: &'a DatabaseInfo,
    fill: Option<&'a fill::FillReport>,
    pages: &'a pages::PageFigures,
    pages_cpu: cpu::Usage,
    http: Option<&'a (http::HttpFigures, cpu::Usage)>,
    insert: Option<&'a (insert::InsertFigures, cpu::Usage)>,
    load_at_start: String,
    plans: &'a str,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn ratio(slow: Duration, fast: Duration) -> f64 {
    slow.as_secs_f64() / fast.as_secs_f64().max(1e-9)
}

fn render_report(r: &Report<'_>) -> String {
    let mut out = String::new();
    let page = &r.pages.store_keyset;
    let offset = &r.pages.offset;
    let goal = r.backend.page_p99_goal();
    let p50_ratio = ratio(offset.p50, page.p50);
    let p99_ratio = ratio(offset.p99, page.p99);
    let _ = writeln!(
        out,
        "### {} — {} messages in {} rooms",
        r.backend.name(),
        r.info.messages,
        r.args.rooms
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Machine: {}; load average at start {}",
        machine_info(),
        r.load_at_start
    );
    let _ = writeln!(out, "- Database: {}", r.info.summary);
    let _ = writeln!(out, "- Command: `{}`", r.command_line);
    let _ = writeln!(out);
    let _ = writeln!(out, "| measurement | p50 | p99 | max | goal | |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| DB page, keyset (`Store::history_page`, {} × {} msgs) | {} | {} | {} | p99 ≤ {} | {} |",
        page.count,
        r.args.page_size,
        ms(page.p50),
        ms(page.p99),
        ms(page.max),
        ms(goal),
        verdict(page.p99 <= goal)
    );
    let raw = &r.pages.raw_keyset;
    let _ = writeln!(
        out,
        "| DB page, keyset, a row per message on a raw pool | {} | {} | {} | | |",
        ms(raw.p50),
        ms(raw.p99),
        ms(raw.max)
    );
    let _ = writeln!(
        out,
        "| DB page, OFFSET {} (raw pool) | {} | {} | {} | | |",
        r.pages.offset_depth,
        ms(offset.p50),
        ms(offset.p99),
        ms(offset.max)
    );
    let _ = writeln!(
        out,
        "| OFFSET ÷ keyset | {p50_ratio:.1}× | {p99_ratio:.1}× | | ≥ {OFFSET_RATIO_GOAL}× | {} |",
        verdict(p50_ratio >= OFFSET_RATIO_GOAL && p99_ratio >= OFFSET_RATIO_GOAL)
    );
    if let Some((h, _)) = r.http {
        let rate_ok = h.achieved_rate >= 0.98 * h.offered_rate && h.errors == 0;
        let _ = writeln!(
            out,
            "| HTTP page, from due time ({} req at {:.0}/s offered, {:.0}/s achieved, {} conns, {} errors) | {} | {} | {} | p99 ≤ {} at {:.0}/s | {} |",
            h.latency.count,
            h.offered_rate,
            h.achieved_rate,
            h.connections,
            h.errors,
            ms(h.latency.p50),
            ms(h.latency.p99),
            ms(h.latency.max),
            ms(HTTP_P99_GOAL),
            h.offered_rate,
            verdict(h.latency.p99 <= HTTP_P99_GOAL && rate_ok)
        );
        let _ = writeln!(
            out,
            "| HTTP page, service time (send → last byte) | {} | {} | {} | | |",
            ms(h.service.p50),
            ms(h.service.p99),
            ms(h.service.max)
        );
    }
    if let Some((i, _)) = r.insert {
        let how = if i.batch_size > 1 {
            format!(
                "`Store::post_messages` ({} msgs in batches of {}, times per batch",
                i.messages, i.batch_size
            )
        } else {
            format!(
                "`Store::post_message` ({} msgs, {} tasks",
                i.messages, i.tasks
            )
        };
        let _ = writeln!(
            out,
            "| insert, {how}, {:.1} s): **{:.0} msgs/s** | {} | {} | {} | | |",
            i.elapsed.as_secs_f64(),
            i.per_second,
            ms(i.latency.p50),
            ms(i.latency.p99),
            ms(i.latency.max)
        );
    }
    match r.fill {
        Some(f) => {
            let _ = writeln!(
                out,
                "| fill: setup through Store {:.1} s; bulk {} msgs in {:.1} s (**{:.0} msgs/s**) | | | | | |",
                f.setup.as_secs_f64(),
                f.rows,
                f.bulk.as_secs_f64(),
                f.rows as f64 / f.bulk.as_secs_f64()
            );
        }
        None => {
            let _ = writeln!(out, "| fill: reused (`--skip-fill`) | | | | | |");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} of {} keyset pages were short (the room's oldest messages).",
        r.pages.short_pages, page.count
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "CPU use during each phase (in cores):");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| phase | machine busy | storebench (client + in-process server) | postgres | other processes |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let mut phases = vec![("DB pages", r.pages_cpu)];
    if let Some((_, usage)) = r.http {
        phases.push(("HTTP pages", *usage));
    }
    if let Some((_, usage)) = r.insert {
        phases.push(("inserts", *usage));
    }
    for (phase, u) in phases {
        let _ = writeln!(
            out,
            "| {phase} | {:.2} / {} | {:.2} | {:.2} | {:.2} |",
            u.busy, u.cores, u.own, u.postgres, u.others
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Query plans:\n\n```\n{}\n```", r.plans);
    out
}
