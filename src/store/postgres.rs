//! PostgreSQL, for larger installations and for clusters of several Banter nodes. One
//! pool serves reads and writes; per-room ordering comes from the row lock that taking
//! the next seq holds until commit.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

use super::sql::sql_store;

/// How long a pooled connection may sit unused before it is pinged on its next use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL and migrates it (the
    /// migrator takes an advisory lock, so nodes starting together do not collide).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        // sqlx pings a connection when it is released (always) and again when it is
        // acquired (by default): three round trips to the server per query. A connection
        // released a moment ago was just found alive, so only one that sat idle long
        // enough to have been cut (a server restart, a proxy's idle timeout) is pinged.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at DATABASE_URL: {e}"))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the PostgreSQL database: {e}"))?;
        Ok(Self { pool })
    }

    async fn backup(&self, _path: &str) -> super::StoreResult<()> {
        Err(super::StoreError::Other(
            "PostgreSQL is backed up with its own tools: `pg_dump -Fc <database> > banter.dump` for a \
             logical copy, or pg_basebackup with WAL archiving for point-in-time recovery"
                .into(),
        ))
    }

    fn write_concurrency(&self) -> usize {
        4
    }

    /// A batch is a transaction of sqlx statements (see `post_batch_with_sqlx`).
    async fn post_batch(&self, batch: &[NewMessage]) -> Result<Vec<PostOutcome>, BatchError> {
        self.post_batch_with_sqlx(batch).await
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(PostgresStore, sqlx::Postgres);
