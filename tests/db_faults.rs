//! Database faults during traffic, against the real `banter` binary. Each is checked the
//! same way: writes are refused with the contract's 503 `unavailable` (HTTP) or an
//! `unavailable` `error` frame (WebSocket, connection kept open), nothing panics, the
//! server writes again by itself once the database is back (no restart), and every
//! message acknowledged (`ack` or 201) before, during or after the fault is in the
//! history, which stays gapless by seq.
//!
//! - PostgreSQL stopped (`pg_ctl stop -m immediate`) and started again: a private
//!   instance this test creates (initdb as the `postgres` user, a free port, fsync on),
//!   never the shared one on 5432.
//! - The SQLite file made unwritable: `chattr +i` on the database and its WAL. Root
//!   ignores permission bits but not the immutable flag (ext4, where /tmp lives), and
//!   the flag binds descriptors that are already open: SQLite's writes fail with EPERM,
//!   which it reports as SQLITE_IOERR. The `-shm` index is left alone: SQLite maps it
//!   into memory, and a store to an immutable mapped page kills the process with
//!   SIGBUS. Remounting a file system read-only is no use: the kernel refuses (EBUSY)
//!   while the database is open for writing.
//! - SQLite's disk full: DATA_DIR on an 8 MiB tmpfs that a filler file fills up.
//!
//! They need root (mount, chattr, runuser) and fail, saying so, without it.

mod common;
mod procs;
mod wsclient;

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use procs::{Server, create_room, free_port, history, register, start_server_output};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use wsclient::WsClient;

/// How long the server may take to write again once the database is back.
const RECOVERY: Duration = Duration::from_secs(20);

fn require_root(what: &str) {
    let output = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(
        uid, "0",
        "{what} needs root (it mounts file systems, sets chattr flags or runs commands as \
         the postgres user): run the tests as root, as CI does"
    );
}

/// Runs a command, panicking with its output when it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL of this test's own, in a temp dir owned by the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn start_new() -> Self {
        require_root("a private PostgreSQL");
        let bin = ["/usr/local/bin", "/usr/lib/postgresql/15/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
            .expect("initdb and pg_ctl in /usr/local/bin or /usr/lib/postgresql/15/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("chown").arg("postgres:").arg(dir.path()));
        let postgres = Self {
            bin,
            dir,
            port: free_port(),
        };
        // --no-sync only skips flushing initdb's own files; the server runs with fsync on.
        run(postgres
            .as_postgres("initdb")
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(postgres.data()));
        postgres.start();
        postgres
    }

    /// A command from PostgreSQL's bin dir, run as the `postgres` user.
    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .current_dir(self.dir.path());
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-o", &options, "start"]));
    }

    /// Stops it as a crash would: no checkpoint, connections cut.
    fn stop_immediately(&self) {
        run(self
            .as_postgres("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop"));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// A tmpfs of `size` mounted on a temp dir, unmounted when dropped (also when a test
/// fails, so no mount is left behind).
struct Tmpfs {
    point: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        require_root("mounting a tmpfs");
        let point = tempfile::tempdir().expect("mount point");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(point.path()));
        Self { point }
    }

    fn path(&self) -> &Path {
        self.point.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the mount goes even if something still has a file open in it.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.point.path())
            .output();
    }
}

/// Files made immutable with `chattr +i`, made mutable again when dropped.
struct Immutable {
    files: Vec<PathBuf>,
}

impl Immutable {
    fn set(files: Vec<PathBuf>) -> Self {
        require_root("chattr +i");
        for file in &files {
            assert!(file.exists(), "{} exists", file.display());
            run(Command::new("chattr").arg("+i").arg(file));
        }
        Self { files }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = Command::new("chattr").arg("-i").arg(file).output();
        }
    }
}

/// `banter serve` with its stdout and stderr kept, to look for panics.
struct Watched {
    server: Server,
    logs: TempDir,
}

async fn start_watched(data_dir: &Path, database_url: &str) -> Watched {
    let logs = tempfile::tempdir().expect("log dir");
    let stdout = File::create(logs.path().join("stdout")).expect("stdout file");
    let stderr = File::create(logs.path().join("stderr")).expect("stderr file");
    let server =
        start_server_output(data_dir, database_url, free_port(), &[], stdout, stderr).await;
    Watched { server, logs }
}

impl Watched {
    fn base(&self) -> String {
        self.server.base.clone()
    }

    /// The process still runs and has reported no panic.
    fn assert_alive_without_panic(&mut self) {
        let exit = self.server.child.try_wait().expect("try_wait");
        assert!(exit.is_none(), "the server exited: {exit:?}");
        for name in ["stdout", "stderr"] {
            let text = std::fs::read_to_string(self.logs.path().join(name)).expect("log");
            assert!(!text.contains("panicked"), "the server panicked: {text}");
        }
    }
}

/// Why a refusal is not the contract's clean 503, if it is not.
fn unclean_refusal(status: StatusCode, body: &Value) -> Option<String> {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let lowered = message.to_lowercase();
    let leaked = [
        "sqlx",
        "sqlite",
        "postgres",
        "database",
        "pool",
        "os error",
        "i/o",
        "connection",
    ]
    .iter()
    .find(|word| lowered.contains(*word));
    if status != StatusCode::SERVICE_UNAVAILABLE
        || body["error"]["code"] != "unavailable"
        || message.is_empty()
        || leaked.is_some()
    {
        Some(format!("{status} {body}"))
    } else {
        None
    }
}

fn assert_unavailable(status: StatusCode, body: &Value) {
    if let Some(problem) = unclean_refusal(status, body) {
        panic!("expected a clean 503 unavailable, got {problem}");
    }
}

/// An `error` frame as the contract's `unavailable`, naming the send it refuses.
fn assert_unavailable_frame(frame: &Value, client_id: &str) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["ref"], client_id, "{frame}");
    assert_unavailable(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": frame}));
}

async fn post_message(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    room_id: i64,
    text: &str,
    client_id: &str,
) -> (StatusCode, Value) {
    try_post_message(client, base, token, room_id, text, client_id)
        .await
        .expect("the server answers")
}

async fn try_post_message(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    room_id: i64,
    text: &str,
    client_id: &str,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}/chat/rooms/{room_id}/messages/"))
        .bearer_auth(token)
        .json(&json!({"message": text, "client_id": client_id}))
        .send()
        .await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn get(base: &str, path: &str, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Sends a message over `ws` and returns the `ack` or `error` frame answering it.
async fn ws_send(ws: &mut WsClient, room_id: i64, text: &str, client_id: &str) -> Option<Value> {
    ws.stream_send(
        json!({"type": "send", "room_id": room_id, "message": text, "client_id": client_id}),
    )
    .await
    .ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let frame = ws
            .try_next(deadline.saturating_duration_since(Instant::now()))
            .await?;
        let answers = frame["client_id"] == client_id || frame["ref"] == client_id;
        if answers && (frame["type"] == "ack" || frame["type"] == "error") {
            return Some(frame);
        }
    }
}

/// What the traffic saw.
#[derive(Default)]
struct Tally {
    /// client_ids answered by an `ack` or a 201.
    acknowledged: HashSet<String>,
    /// Sends refused with a clean `unavailable`.
    refused: usize,
    /// Anything else: a dropped connection, another status or code, leaked internals.
    unexpected: Vec<String>,
}

/// Two WebSocket senders and one HTTP poster, each sending one message at a time to one
/// room until stopped.
struct Traffic {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    async fn start(base: &str, token: &str, room_id: i64) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for label in ["ws0", "ws1"] {
            let mut ws = WsClient::connect(base, token).await;
            let (tally, stop) = (tally.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let client_id = format!("{label}-{n}");
                    n += 1;
                    let reply =
                        ws_send(&mut ws, room_id, &format!("{label} m{n}"), &client_id).await;
                    let mut tally = tally.lock().expect("tally");
                    match reply {
                        None => {
                            tally
                                .unexpected
                                .push(format!("{label}: the connection dropped or went silent"));
                            return;
                        }
                        Some(frame) if frame["type"] == "ack" => {
                            tally.acknowledged.insert(client_id);
                        }
                        Some(frame) if frame["code"] == "unavailable" => {
                            tally.refused += 1;
                            if frame["ref"] != client_id.as_str() {
                                tally.unexpected.push(format!("{label}: {frame}"));
                            }
                        }
                        Some(frame) => tally.unexpected.push(format!("{label}: {frame}")),
                    }
                }
                ws.close().await;
            }));
        }
        let (base, token) = (base.to_owned(), token.to_owned());
        let (tally_http, stop_http) = (tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while !stop_http.load(Ordering::Relaxed) {
                let client_id = format!("http-{n}");
                n += 1;
                let answer = try_post_message(
                    &client,
                    &base,
                    &token,
                    room_id,
                    &format!("http m{n}"),
                    &client_id,
                )
                .await;
                let mut tally = tally_http.lock().expect("tally");
                let Ok((status, body)) = answer else {
                    tally
                        .unexpected
                        .push(format!("http: no answer: {answer:?}"));
                    return;
                };
                if status == StatusCode::CREATED {
                    tally.acknowledged.insert(client_id);
                } else if let Some(problem) = unclean_refusal(status, &body) {
                    tally.unexpected.push(format!("http: {problem}"));
                } else {
                    tally.refused += 1;
                }
            }
        }));
        Self { tally, stop, tasks }
    }

    fn acknowledged(&self) -> usize {
        self.tally.lock().expect("tally").acknowledged.len()
    }

    fn refused(&self) -> usize {
        self.tally.lock().expect("tally").refused
    }

    /// Waits until the traffic has `count` more acknowledged messages than now.
    async fn wait_for_acks(&self, count: usize) {
        let target = self.acknowledged() + count;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.acknowledged() < target {
            assert!(
                Instant::now() < deadline,
                "traffic got no acks: {:?}",
                self.tally.lock().expect("tally").unexpected
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the traffic has seen `count` more clean refusals than now.
    async fn wait_for_refusals(&self, count: usize) {
        let target = self.refused() + count;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.refused() < target {
            assert!(
                Instant::now() < deadline,
                "traffic saw no refusal: {:?}",
                self.tally.lock().expect("tally").unexpected
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the senders and returns what they saw, asserting nothing unexpected.
    async fn finish(self) -> HashSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        join_all(self.tasks).await;
        let mut tally = self.tally.lock().expect("tally");
        assert!(
            tally.unexpected.is_empty(),
            "traffic saw unclean answers: {:?}",
            tally.unexpected
        );
        std::mem::take(&mut tally.acknowledged)
    }
}

/// Posts until one is stored, within [`RECOVERY`]; returns how long it took. Every 201
/// goes into `acknowledged`, every refusal must be clean.
async fn wait_until_writes_resume(
    base: &str,
    token: &str,
    room_id: i64,
    acknowledged: &mut HashSet<String>,
) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut n = 0;
    loop {
        let client_id = format!("resume-{n}");
        n += 1;
        let (status, body) =
            post_message(&client, base, token, room_id, "are we back?", &client_id).await;
        if status == StatusCode::CREATED {
            acknowledged.insert(client_id);
            return started.elapsed();
        }
        assert_unavailable(status, &body);
        assert!(
            started.elapsed() < RECOVERY,
            "writes did not resume within {RECOVERY:?}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every acknowledged message is stored, and the room's history is gapless from seq 1.
async fn assert_nothing_acknowledged_is_missing(
    base: &str,
    token: &str,
    room_id: i64,
    acknowledged: &HashSet<String>,
) {
    let (status, room) = get(base, &format!("/chat/rooms/{room_id}/"), token).await;
    assert_eq!(status, StatusCode::OK, "{room}");
    let last_seq = room["last_seq"].as_i64().expect("last_seq");
    let stored = history(base, room_id, token).await;
    let stored_ids: HashSet<&str> = stored
        .iter()
        .filter_map(|m| m["client_id"].as_str())
        .collect();
    let mut missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let seqs: Vec<i64> = stored
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=last_seq).collect::<Vec<_>>(),
        "history is gapless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_during_traffic_gives_503_and_recovers_without_restart() {
    let postgres = PrivatePostgres::start_new();
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut server = start_watched(data_dir.path(), &postgres.url()).await;
    let base = server.base();
    let (token, _) = register(&base, "owner").await;
    let room_id = create_room(&base, &token, "outage").await;
    let mut probe = WsClient::connect(&base, &token).await;
    let traffic = Traffic::start(&base, &token, room_id).await;
    traffic.wait_for_acks(50).await;

    postgres.stop_immediately();
    traffic.wait_for_refusals(3).await;
    // Each of these waits out the pool's acquire timeout: run them side by side.
    let client = reqwest::Client::new();
    let history_path = format!("/chat/rooms/{room_id}/messages/");
    let (posted, history_page, rooms, ready, frame) = tokio::join!(
        post_message(&client, &base, &token, room_id, "during", "probe-http"),
        get(&base, &history_path, &token),
        get(&base, "/chat/rooms/", &token),
        get(&base, "/readyz", &token),
        ws_send(&mut probe, room_id, "during", "probe-ws-1"),
    );
    assert_unavailable(posted.0, &posted.1);
    assert_unavailable(history_page.0, &history_page.1);
    assert_unavailable(rooms.0, &rooms.1);
    assert_eq!(
        ready.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "readyz: {}",
        ready.1
    );
    let frame = frame.expect("an answer, not a dropped connection");
    assert_unavailable_frame(&frame, "probe-ws-1");
    server.assert_alive_without_panic();

    postgres.start();
    let mut acknowledged = HashSet::new();
    let recovery = wait_until_writes_resume(&base, &token, room_id, &mut acknowledged).await;
    eprintln!("writes resumed {recovery:?} after PostgreSQL was back");
    let (status, body) = get(&base, "/readyz", &token).await;
    assert_eq!(status, StatusCode::OK, "readyz: {body}");
    let frame = ws_send(&mut probe, room_id, "after", "probe-ws-2")
        .await
        .expect("the same connection still works");
    assert_eq!(frame["type"], "ack", "{frame}");
    acknowledged.insert("probe-ws-2".into());
    traffic.wait_for_acks(20).await;
    acknowledged.extend(traffic.finish().await);

    assert_nothing_acknowledged_is_missing(&base, &token, room_id, &acknowledged).await;
    server.assert_alive_without_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_unwritable_during_traffic_refuses_writes_serves_reads_and_recovers() {
    require_root("making the SQLite file immutable");
    let data_dir = tempfile::tempdir().expect("data dir");
    let database = data_dir.path().join("banter.db");
    let mut server =
        start_watched(data_dir.path(), &format!("sqlite://{}", database.display())).await;
    let base = server.base();
    let (token, _) = register(&base, "owner").await;
    let room_id = create_room(&base, &token, "unwritable").await;
    let mut probe = WsClient::connect(&base, &token).await;
    let traffic = Traffic::start(&base, &token, room_id).await;
    traffic.wait_for_acks(50).await;

    let wal = data_dir.path().join("banter.db-wal");
    let immutable = Immutable::set(vec![database, wal]);
    traffic.wait_for_refusals(1).await;
    // Refused writes wait out the writer pool's acquire timeout: run the probes side by
    // side, and time the reads, which must not wait for the writer.
    let client = reqwest::Client::new();
    let history_path = format!("/chat/rooms/{room_id}/messages/");
    let reads = async {
        let started = Instant::now();
        let history_page = get(&base, &history_path, &token).await;
        let rooms = get(&base, "/chat/rooms/", &token).await;
        (history_page, rooms, started.elapsed())
    };
    let (posted, frame, (history_page, rooms, read_time)) = tokio::join!(
        post_message(&client, &base, &token, room_id, "during", "probe-http"),
        ws_send(&mut probe, room_id, "during", "probe-ws-1"),
        reads,
    );
    assert_unavailable(posted.0, &posted.1);
    let frame = frame.expect("an answer, not a dropped connection");
    assert_unavailable_frame(&frame, "probe-ws-1");
    assert_eq!(
        history_page.0,
        StatusCode::OK,
        "history is still served: {}",
        history_page.1
    );
    assert!(!history_page.1.as_array().expect("a page").is_empty());
    assert_eq!(
        rooms.0,
        StatusCode::OK,
        "rooms are still served: {}",
        rooms.1
    );
    assert!(
        read_time < Duration::from_secs(2),
        "reads waited {read_time:?}"
    );
    server.assert_alive_without_panic();

    drop(immutable);
    let mut acknowledged = HashSet::new();
    let recovery = wait_until_writes_resume(&base, &token, room_id, &mut acknowledged).await;
    eprintln!("writes resumed {recovery:?} after the file was writable again");
    let frame = ws_send(&mut probe, room_id, "after", "probe-ws-2")
        .await
        .expect("the same connection still works");
    assert_eq!(frame["type"], "ack", "{frame}");
    acknowledged.insert("probe-ws-2".into());
    traffic.wait_for_acks(20).await;
    acknowledged.extend(traffic.finish().await);

    assert_nothing_acknowledged_is_missing(&base, &token, room_id, &acknowledged).await;
    server.assert_alive_without_panic();
}

/// Writes a file of zeros into `dir` until the file system is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("filler file");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_refuses_writes_serves_reads_and_recovers_after_freeing_space() {
    let disk = Tmpfs::mount("8m");
    let database = disk.path().join("banter.db");
    let mut server = start_watched(disk.path(), &format!("sqlite://{}", database.display())).await;
    let base = server.base();
    let (token, _) = register(&base, "owner").await;
    let room_id = create_room(&base, &token, "full").await;
    let mut probe = WsClient::connect(&base, &token).await;
    let traffic = Traffic::start(&base, &token, room_id).await;
    traffic.wait_for_acks(50).await;

    let filler = fill(disk.path());
    // Pages SQLite already holds (the WAL is reused after a checkpoint) may take a few
    // more messages; big ones use them up fast. Every answer must be a 201 or a clean 503.
    let client = reqwest::Client::new();
    let big = "x".repeat(4000);
    let mut acknowledged = HashSet::new();
    let mut refused = false;
    for n in 0..3000 {
        let client_id = format!("big-{n}");
        let (status, body) = post_message(&client, &base, &token, room_id, &big, &client_id).await;
        if status == StatusCode::CREATED {
            acknowledged.insert(client_id);
        } else {
            assert_unavailable(status, &body);
            refused = true;
            break;
        }
    }
    assert!(refused, "writes were never refused on a full disk");
    traffic.wait_for_refusals(3).await;
    let mut refused_frame = None;
    for n in 0..100 {
        let client_id = format!("probe-ws-{n}");
        let frame = ws_send(&mut probe, room_id, &big, &client_id)
            .await
            .expect("an answer, not a dropped connection");
        if frame["type"] == "ack" {
            acknowledged.insert(client_id);
        } else {
            assert_unavailable_frame(&frame, &client_id);
            refused_frame = Some(frame);
            break;
        }
    }
    assert!(
        refused_frame.is_some(),
        "WebSocket sends were never refused"
    );

    let (status, body) = get(&base, &format!("/chat/rooms/{room_id}/messages/"), &token).await;
    assert_eq!(status, StatusCode::OK, "history is still served: {body}");
    assert!(!body.as_array().expect("a page").is_empty());
    let (status, body) = get(&base, "/chat/rooms/", &token).await;
    assert_eq!(status, StatusCode::OK, "rooms are still served: {body}");
    let (status, body) = get(&base, "/auth/me/", &token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the caller's profile is still served: {body}"
    );
    // Logging in stores a refresh token: it may be refused, but only cleanly.
    let (status, body) = {
        let response = client
            .post(format!("{base}/auth/login/"))
            .json(&json!({"username": "owner", "password": "password-123"}))
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    if status != StatusCode::OK {
        assert_unavailable(status, &body);
    }
    eprintln!("login on a full disk: {status}");
    server.assert_alive_without_panic();

    std::fs::remove_file(filler).expect("free the space");
    let recovery = wait_until_writes_resume(&base, &token, room_id, &mut acknowledged).await;
    eprintln!("writes resumed {recovery:?} after space was freed");
    let frame = ws_send(&mut probe, room_id, "after", "probe-ws-after")
        .await
        .expect("the same connection still works");
    assert_eq!(frame["type"], "ack", "{frame}");
    acknowledged.insert("probe-ws-after".into());
    traffic.wait_for_acks(20).await;
    acknowledged.extend(traffic.finish().await);

    assert_nothing_acknowledged_is_missing(&base, &token, room_id, &acknowledged).await;
    server.assert_alive_without_panic();
}
