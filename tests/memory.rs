//! Memory the server keeps after work is done. Each password hash takes 19 MiB; a burst
//! of registrations must not leave those blocks resident (glibc kept them in per-thread
//! arenas; the server's allocator is chosen in `main.rs`).

mod procs;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_leaves_no_hashing_memory_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/banter.db?mode=rwc", dir.path().display());
    let server = procs::start_server(dir.path(), &database_url, procs::free_port(), &[]).await;
    let pid = server.child.id();
    let before = rss_kib(pid);

    let registrations = (0..64).map(|i| {
        let base = server.base.clone();
        tokio::spawn(async move { procs::register(&base, &format!("burst{i}")).await })
    });
    for registration in futures_util::future::join_all(registrations).await {
        registration.expect("registration task");
    }

    let after = rss_kib(pid);
    // 64 hashes of 19 MiB each went through; what stays must be far less than even a few.
    assert!(
        after < before + 60 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 64 registrations"
    );
}
