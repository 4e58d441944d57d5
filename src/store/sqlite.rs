//! SQLite, the embedded default: one file in WAL mode with `synchronous=FULL`, so a
//! commit is on disk before it is acknowledged. SQLite allows one writer at a time, so
//! writes go through a pool of exactly one connection (they queue in the pool instead of
//! failing with SQLITE_BUSY), while reads use a pool of read-only connections that WAL
//! lets run beside the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::sql_store;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by a `sqlite:` URL and migrates it.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid SQLite URL: {e}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // History pages read ~50 scattered pages: a bigger page cache and memory-mapped
            // reads keep them off the read() path (the defaults are a 2 MB cache, no mmap).
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", "268435456");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the SQLite database: {e}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the SQLite database: {e}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the SQLite database for reading: {e}"))?;
        Ok(Self { writer, reader })
    }

    /// `VACUUM INTO` copies a consistent snapshot (a read transaction) while writers go on.
    async fn backup(&self, path: &str) -> super::StoreResult<()> {
        if std::path::Path::new(path).exists() {
            return Err(super::StoreError::Other(format!(
                "'{path}' already exists; choose a new file"
            )));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    fn write_concurrency(&self) -> usize {
        1
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);
