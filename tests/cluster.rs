//! Several Banter nodes on one PostgreSQL database with NATS as the bus (the machine's
//! NATS at 127.0.0.1:4222, or `TEST_NATS_URL`). Each test uses its own cluster name, so
//! concurrent runs do not hear each other.

mod common;
mod procs;
mod wsclient;

use common::{Backend, TestApp, spawn_app_with};
use futures_util::future::join_all;
use serde_json::{Value, json};
use wsclient::WsClient;

fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Three nodes sharing one fresh PostgreSQL database and one cluster name.
async fn three_nodes() -> Vec<TestApp> {
    let cluster = format!("test{:x}", rand_u64());
    let first = spawn_app_with(Backend::Postgres, |s| {
        s.bus_url = Some(nats_url());
        s.cluster_name = cluster.clone();
    })
    .await;
    let database_url = first.database_url.clone();
    let mut nodes = vec![first];
    for _ in 0..2 {
        let database_url = database_url.clone();
        let cluster = cluster.clone();
        nodes.push(
            spawn_app_with(Backend::Postgres, move |s| {
                s.database_url = Some(database_url);
                s.bus_url = Some(nats_url());
                s.cluster_name = cluster;
            })
            .await,
        );
    }
    nodes
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    hasher.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_delivers_every_event_in_the_same_gapless_order() {
    let nodes = three_nodes().await;
    let owner = nodes[0].register("owner").await;
    let room = nodes[0].create_room(&owner, "everywhere", false).await;
    let mut senders = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let user = node.register(&format!("sender{i}")).await;
        let (status, _) = node
            .post(
                &format!("/chat/rooms/{room}/join/"),
                &user.access,
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        senders.push(user);
    }
    let mut subscribers = Vec::new();
    for node in &nodes {
        let mut ws = WsClient::connect(&node.base, &owner.access).await;
        ws.subscribe(room, None).await;
        subscribers.push(ws);
    }
    let (_, start) = nodes[0]
        .get(&format!("/chat/rooms/{room}/"), &owner.access)
        .await;
    let first_seq = start["last_seq"].as_i64().expect("last_seq") + 1;
    let per_sender = 30;
    let bursts = senders.iter().enumerate().map(|(i, sender)| {
        let base = nodes[i].base.clone();
        let token = sender.access.clone();
        async move { wsclient::send_burst(&base, &token, room, &format!("n{i}"), per_sender).await }
    });
    join_all(bursts).await;
    let total = 3 * per_sender;
    let mut orders: Vec<Vec<Value>> = Vec::new();
    for ws in &mut subscribers {
        let mut events = Vec::new();
        while events.len() < total {
            let frame = ws.next().await;
            if frame["room_id"] == room && frame.get("seq").is_some() {
                events.push(frame);
            }
        }
        let seqs: Vec<i64> = events
            .iter()
            .map(|e| e["seq"].as_i64().expect("seq"))
            .collect();
        assert_eq!(
            seqs,
            (first_seq..first_seq + total as i64).collect::<Vec<_>>(),
            "gapless and ordered on every node"
        );
        orders.push(events.iter().map(|e| e["message"]["id"].clone()).collect());
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "the same order on every node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_writes_typing_and_read_markers_cross_nodes() {
    let nodes = three_nodes().await;
    let ann = nodes[0].register("ann").await;
    let bob = nodes[1].register("bob").await;
    let room = nodes[0].create_room(&ann, "talk", false).await;
    let mut ann_ws = WsClient::connect(&nodes[0].base, &ann.access).await;
    ann_ws.subscribe(room, None).await;
    let mut bob_ws = WsClient::connect(&nodes[1].base, &bob.access).await;
    bob_ws.subscribe(room, None).await;

    // An HTTP post on the third node reaches subscribers on the other two.
    nodes[2].send(&ann, room, "from node three").await;
    for ws in [&mut ann_ws, &mut bob_ws] {
        let message = ws.next_of_type("message").await;
        assert_eq!(message["message"]["content"], "from node three");
    }
    ann_ws
        .send(json!({"type": "typing", "room_id": room, "typing": true}))
        .await;
    let typing = bob_ws.next_of_type("typing").await;
    assert_eq!(
        (
            typing["user"]["username"].as_str(),
            typing["typing"].as_bool()
        ),
        (Some("ann"), Some(true))
    );

    // A read marker moved through node three reaches ann's socket on node one.
    let reply = nodes[1].send(&bob, room, "reply").await;
    let seq = reply["seq"].as_i64().expect("seq");
    let (status, _) = nodes[2]
        .post(
            &format!("/chat/rooms/{room}/read/"),
            &ann.access,
            json!({"seq": seq}),
        )
        .await;
    assert_eq!(status, 204);
    let read = ann_ws.next_of_type("read").await;
    assert_eq!(
        (read["room_id"].as_i64(), read["seq"].as_i64()),
        (Some(room), Some(seq))
    );

    // Deactivation on one node closes the user's sockets on another.
    nodes[0].promote("ann");
    let (status, _) = nodes[2]
        .patch(
            &format!("/admin/users/{}/", bob.id),
            &ann.access,
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(bob_ws.closed().await, Some(4001));
    let (status, ready) = nodes[0]
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, 200, "{ready}");
}

/// The next `presence` frame within `wait`, skipping others.
async fn next_presence(ws: &mut WsClient, wait: std::time::Duration) -> Option<(String, bool)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = ws.try_next(left).await?;
        if frame["type"] == "presence" {
            let user = frame["user"]["username"]
                .as_str()
                .expect("username")
                .to_owned();
            return Some((user, frame["online"].as_bool().expect("online")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_a_users_union_over_nodes() {
    let nodes = three_nodes().await;
    let ann = nodes[0].register("ann").await;
    let bob = nodes[0].register("bob").await;
    let carol = nodes[0].register("carol").await;
    let room = nodes[0].create_room(&ann, "lobby", false).await;
    for user in [&bob, &carol] {
        let (status, _) = nodes[0]
            .post(
                &format!("/chat/rooms/{room}/join/"),
                &user.access,
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let short = std::time::Duration::from_millis(500);
    let long = std::time::Duration::from_secs(10);

    let mut ann_ws = WsClient::connect(&nodes[0].base, &ann.access).await;
    ann_ws.subscribe(room, None).await;
    let mut bob_on_1 = WsClient::connect(&nodes[1].base, &bob.access).await;
    bob_on_1.subscribe(room, None).await;
    assert_eq!(
        next_presence(&mut ann_ws, long).await,
        Some(("bob".into(), true))
    );

    // A subscriber on a third node is told both, though neither is on its node.
    let mut carol_ws = WsClient::connect(&nodes[2].base, &carol.access).await;
    let (_, subscribed) = carol_ws.subscribe(room, None).await;
    let mut online: Vec<&str> = subscribed["online"]
        .as_array()
        .expect("online")
        .iter()
        .filter_map(|user| user["username"].as_str())
        .collect();
    online.sort_unstable();
    assert_eq!(online, ["ann", "bob", "carol"]);
    assert_eq!(
        next_presence(&mut ann_ws, long).await,
        Some(("carol".into(), true))
    );

    // Bob on a second node is still one bob: nobody is told.
    let mut bob_on_2 = WsClient::connect(&nodes[2].base, &bob.access).await;
    bob_on_2.subscribe(room, None).await;
    // Notices from different nodes are not ordered with each other: node three's
    // "online" must reach the others before node two's "offline", or they would see
    // bob flicker off and on (as users could, when someone moves nodes that fast).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    bob_on_1.close().await;
    assert_eq!(
        next_presence(&mut ann_ws, short).await,
        None,
        "bob is still online on node three"
    );
    assert_eq!(next_presence(&mut carol_ws, short).await, None);

    // His last connection ends: offline everywhere.
    bob_on_2.close().await;
    assert_eq!(
        next_presence(&mut ann_ws, long).await,
        Some(("bob".into(), false))
    );
    assert_eq!(
        next_presence(&mut carol_ws, long).await,
        Some(("bob".into(), false))
    );
}

/// A private NATS server on its own port, so restarting it disturbs no other test.
struct Nats {
    child: std::process::Child,
    port: u16,
}

impl Nats {
    // Reaped by Drop, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    async fn start(port: u16) -> Nats {
        let binary = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = std::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server runs");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Nats { child, port }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_readyz(node: &TestApp, status: u16) {
    for _ in 0..200 {
        let (got, _) = node.call(reqwest::Method::GET, "/readyz", None, None).await;
        if got.as_u16() == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_no_event() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let nats = Nats::start(port).await;
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let cluster = format!("restart{:x}", rand_u64());
    let first = {
        let (url, cluster) = (url.clone(), cluster.clone());
        spawn_app_with(Backend::Postgres, move |s| {
            s.bus_url = Some(url);
            s.cluster_name = cluster;
        })
        .await
    };
    let second = {
        let (url, cluster, database_url) =
            (url.clone(), cluster.clone(), first.database_url.clone());
        spawn_app_with(Backend::Postgres, move |s| {
            s.database_url = Some(database_url);
            s.bus_url = Some(url);
            s.cluster_name = cluster;
        })
        .await
    };
    let ann = first.register("ann").await;
    let room = first.create_room(&ann, "steady", false).await;
    let mut watcher = WsClient::connect(&second.base, &ann.access).await;
    watcher.subscribe(room, None).await;
    first.send(&ann, room, "before").await;
    assert_eq!(watcher.next_of_type("message").await["seq"], 1);

    drop(nats);
    wait_for_readyz(&second, 503).await;
    for i in 0..5 {
        first
            .send(&ann, room, &format!("while the bus is down {i}"))
            .await;
    }
    let _nats = Nats::start(port).await;
    wait_for_readyz(&second, 200).await;
    first.send(&ann, room, "after").await;
    let mut seqs = Vec::new();
    while seqs.len() < 6 {
        let frame = watcher.next().await;
        if frame["type"] == "message" {
            seqs.push(frame["seq"].as_i64().expect("seq"));
        }
    }
    assert_eq!(
        seqs,
        vec![2, 3, 4, 5, 6, 7],
        "everything sent while the bus was down arrives, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_mid_burst_loses_no_acknowledged_message() {
    let nats = Nats::start(procs::free_port()).await;
    let bus = format!("nats://127.0.0.1:{}", nats.port);
    let cluster = format!("kill{:x}", rand_u64());
    let database_url = common::fresh_postgres_database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("BUS_URL", bus.as_str()),
        ("CLUSTER_NAME", cluster.as_str()),
    ];
    let doomed = procs::start_server(dir.path(), &database_url, procs::free_port(), &env).await;
    let survivor = procs::start_server(dir.path(), &database_url, procs::free_port(), &env).await;
    let (token, _) = procs::register(&survivor.base, "ann").await;
    let room = procs::create_room(&survivor.base, &token, "burst").await;
    // Bob is online only through the doomed node; when it dies, he goes offline.
    let (bob, _) = procs::register(&survivor.base, "bob").await;
    let joined = reqwest::Client::new()
        .post(format!("{}/chat/rooms/{room}/join/", survivor.base))
        .bearer_auth(&bob)
        .json(&json!({}))
        .send()
        .await
        .expect("join");
    assert_eq!(joined.status(), 200);
    let mut watcher = WsClient::connect(&survivor.base, &token).await;
    let (replay, _) = watcher.subscribe(room, Some(0)).await;
    let mut bob_ws = WsClient::connect(&doomed.base, &bob).await;
    bob_ws.subscribe(room, None).await;
    assert_eq!(
        next_presence(&mut watcher, std::time::Duration::from_secs(10)).await,
        Some(("bob".into(), true))
    );

    // Send through the doomed node, 16 in flight; kill it -9 after 100 acks.
    let mut sender = WsClient::connect(&doomed.base, &token).await;
    let frame = |n: usize| json!({"type": "send", "room_id": room, "message": format!("m{n}"), "client_id": format!("k{n}")});
    let mut acked = std::collections::HashSet::new();
    let mut sent = 0;
    while sent < 16 {
        sender.send(frame(sent)).await;
        sent += 1;
    }
    while acked.len() < 100 {
        let reply = sender.next().await;
        if reply["type"] == "ack" {
            acked.insert(reply["client_id"].as_str().expect("client_id").to_owned());
            sender.send(frame(sent)).await;
            sent += 1;
        }
    }
    drop(doomed);
    while let Some(reply) = sender.try_next(std::time::Duration::from_millis(200)).await {
        if reply["type"] == "ack" {
            acked.insert(reply["client_id"].as_str().expect("client_id").to_owned());
        }
    }

    // The client moves to the surviving node and carries on.
    let mut moved = WsClient::connect(&survivor.base, &token).await;
    moved.send(json!({"type": "send", "room_id": room, "message": "after the crash", "client_id": "after"})).await;
    assert_eq!(moved.next_of_type("ack").await["client_id"], "after");

    let stored = procs::history(&survivor.base, room, &token).await;
    let stored_ids: std::collections::HashSet<&str> = stored
        .iter()
        .filter_map(|m| m["client_id"].as_str())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let last_seq = stored
        .last()
        .and_then(|m| m["seq"].as_i64())
        .expect("messages");
    // The watcher on the surviving node saw every event, gapless, even those the dead
    // node committed but never published.
    let mut seen: Vec<i64> = replay
        .iter()
        .filter_map(|event| event["seq"].as_i64())
        .collect();
    let mut presence = Vec::new();
    while seen.last() != Some(&last_seq) {
        let frame = watcher.next().await;
        if frame["room_id"] == room && frame.get("seq").is_some() {
            seen.push(frame["seq"].as_i64().expect("seq"));
        } else if frame["type"] == "presence" {
            presence.push((frame["user"]["username"].clone(), frame["online"].clone()));
        }
    }
    assert_eq!(seen, (1..=last_seq).collect::<Vec<_>>());

    // The dead node's presence goes when it has been silent for the node timeout.
    if presence.is_empty() {
        let wait = banter::gateway::hub::NODE_TIMEOUT + std::time::Duration::from_secs(5);
        if let Some((user, online)) = next_presence(&mut watcher, wait).await {
            presence.push((json!(user), json!(online)));
        }
    }
    assert_eq!(presence, [(json!("bob"), json!(false))]);
    drop(bob_ws);
}
