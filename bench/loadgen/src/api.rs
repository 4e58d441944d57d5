//! The HTTP half of the contract the load generator needs: registering a pool of users,
//! creating rooms and joining them. Skipped entirely against the raw baseline.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;

/// A registered user whose access token the load generator's connections reuse.
#[derive(Debug, Clone)]
pub struct User {
    pub token: String,
}

#[derive(Deserialize)]
struct Tokens {
    access: String,
}

#[derive(Deserialize)]
struct Room {
    id: i64,
}

pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Registers `count` users. Registration hashes a password with Argon2 (tens of ms
    /// of server CPU each), so a small pool is registered once and shared: a user may
    /// hold many connections. `run_id` keeps names unique across runs on one database.
    pub async fn register_pool(&self, count: usize, run_id: &str) -> anyhow::Result<Vec<User>> {
        let results: Vec<anyhow::Result<User>> = stream::iter(0..count)
            .map(|i| async move {
                let username = format!("lg{run_id}_{i}");
                let body = json!({
                    "username": username,
                    "email": format!("{username}@loadgen.example.com"),
                    "password": "loadgen-password",
                });
                let tokens: Tokens = self.post("/auth/register/", None, &body).await?;
                Ok(User {
                    token: tokens.access,
                })
            })
            // Argon2 is CPU bound: more concurrency than the server's cores only queues.
            .buffer_unordered(8)
            .collect()
            .await;
        results.into_iter().collect()
    }

    pub async fn create_room(&self, owner: &User, name: &str) -> anyhow::Result<i64> {
        let room: Room = self
            .post("/chat/rooms/", Some(owner), &json!({ "name": name }))
            .await?;
        Ok(room.id)
    }

    /// Joining up front keeps `member_joined` events out of the measured run (posting
    /// to a public room would join the poster mid-run).
    pub async fn join(&self, user: &User, room_id: i64) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .post(
                &format!("/chat/rooms/{room_id}/join/"),
                Some(user),
                &json!({}),
            )
            .await?;
        Ok(())
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        user: Option<&User>,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST {path}: {status}: {text}");
        }
        response
            .json()
            .await
            .with_context(|| format!("POST {path}: unexpected body"))
    }
}
