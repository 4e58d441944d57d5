//! TLS_CERT and TLS_KEY: Banter serves HTTPS and WSS itself.

mod common;

use std::sync::Arc;

use banter::config::Config;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_wss_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert_pem = certified.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).expect("write key");

    let database_url = format!("sqlite://{}", dir.path().join("banter.db").display());
    let mut settings = common::settings(dir.path(), &database_url);
    settings.tls_cert = Some(cert_path);
    settings.tls_key = Some(key_path);
    let config = Config::resolve(&settings).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        banter::start(&config, listener, async move {
            let _ = stopped.await;
        })
        .await
    });

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let base = format!("https://localhost:{port}");
    let mut healthy = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healthy, "HTTPS answers");
    let session: Value = client
        .post(format!("{base}/auth/register/"))
        .json(&serde_json::json!({"username": "ann", "email": "ann@example.com", "password": "password-123"}))
        .send()
        .await
        .expect("register over https")
        .json()
        .await
        .expect("json");
    let token = session["access"].as_str().expect("access");
    assert!(
        reqwest::get(format!("http://localhost:{port}/healthz"))
            .await
            .is_err(),
        "plain HTTP is not served"
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/ws/?token={token}"),
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(tls))),
    )
    .await
    .expect("wss connects");
    let ready = loop {
        match ws.next().await.expect("a frame").expect("ok") {
            Message::Text(text) => break serde_json::from_str::<Value>(&text).expect("json"),
            _ => continue,
        }
    };
    assert_eq!(ready["type"], "ready");
    let _ = stop.send(());
    let _ = server.await;
}
