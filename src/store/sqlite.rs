//! SQLite, the embedded default: one file in WAL mode with `synchronous=FULL`, so a
//! commit is on disk before it is acknowledged. SQLite allows one writer at a time, so
//! writes go through a pool of exactly one connection (they queue in the pool instead of
//! failing with SQLITE_BUSY), while reads use a pool of read-only connections that WAL
//! lets run beside the writer. Send batches borrow the writer connection's handle and
//! run on rusqlite ([`sqlite_batch`] says why).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Database, Executor, Sqlite, SqlitePool, TransactionManager};

// `sql_store!` brings the store's own types (NewMessage, PostOutcome, BatchError…) in.
use super::sql::sql_store;
use super::sqlite_batch;

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
            // The map covers files up to SQLite's own cap (just under 2 GiB): with 256 MiB,
            // a 1.8 GB database (10 million messages) was read mostly through read(), and
            // HTTP history pages at 2,000/s queued (p99 250-540 ms against 4-8 ms mapped).
            // The map is address space and page cache, not heap: it shows in VmRSS as the
            // file's pages, which the kernel can drop.
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", "2147418112");
        // The writer keeps SQLite's default 2 MiB cache, which fills within minutes and
        // then stays flat (with 32 MiB the soak's anonymous memory grew 15 -> 21 MB in its
        // first five minutes and was still climbing). A full batch of messages dirties
        // more pages than 2 MiB holds, and SQLite spilled them to the WAL mid-transaction
        // and read them back (pwrite 32%, pread 12% of the writer thread in a profile).
        // With spilling off, a transaction's dirty pages stay in memory until it commits,
        // bounded by the batch. Store-only insert ceiling (storebench --batch-size 1024,
        // three runs each, docs/BENCHMARKS.md session 7): 29.6k msgs/s spilling, 30.4k not.
        // Checkpoints every 4,000 WAL pages rather than SQLite's 1,000: a full send batch
        // dirties hundreds of pages, mostly the same room tails batch after batch, and
        // each checkpoint (run by the committing writer, with an fsync) copies them once.
        let writer_options = options
            .clone()
            .pragma("cache_size", "-2048")
            .pragma("cache_spill", "OFF")
            .pragma("wal_autocheckpoint", "4000");
        // No ping before each use (sqlx's default): a SQLite connection is a file handle
        // that cannot go stale, and the ping is a round trip to the connection's worker
        // thread, as costly as the query it precedes.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(refuse_read_only_writer)
            .after_release(reuse_only_outside_transactions)
            .connect_with(writer_options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the SQLite database: {e}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the SQLite database: {e}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(reuse_only_outside_transactions)
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

    /// One writer, and batches of up to 4,096: a commit's fsync and the pages every batch
    /// rewrites (each room's index tail) cost the same for more messages. Against 1,024,
    /// durable sends rose 15% (docs/BENCHMARKS.md, session 9).
    fn send_batching(&self) -> super::SendBatching {
        super::SendBatching {
            writers: 1,
            max_batch: 4096,
        }
    }

    /// A batch goes the direct path ([`sqlite_batch`]) over the writer connection's handle.
    async fn post_batch(&self, batch: &[NewMessage]) -> Result<Vec<PostOutcome>, BatchError> {
        let unavailable = |e: sqlx::Error| BatchError::Transaction(e.into());
        let mut connection = self.writer.acquire().await.map_err(unavailable)?;
        let (written, left_in_transaction) = {
            let mut handle = connection.lock_handle().await.map_err(unavailable)?;
            let raw = handle.as_raw_handle();
            on_this_thread(|| {
                // SAFETY: while `handle` lives, sqlx's worker makes no call on this
                // database handle; the rusqlite connection is dropped before `handle`
                // (finalising its statements), and it does not close a handle it was
                // given.
                let mut direct = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }
                    .map_err(|e| BatchError::Transaction(e.into()))?;
                let written = sqlite_batch::post_batch(&mut direct, batch);
                Ok::<_, BatchError>((written, sqlite_batch::in_transaction(&direct)))
            })?
        };
        if left_in_transaction {
            // Closing the connection rolls it back for good (as in
            // `reuse_only_outside_transactions`); the pool opens a fresh one.
            connection.close_on_drop();
        }
        written
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

/// Runs blocking work on the calling thread: a send batch holds its thread for the
/// length of the transaction. On a multi-threaded runtime the runtime first hands its
/// other tasks to another worker; the server's message writer has a thread of its own.
fn on_this_thread<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Fails a new writer connection that cannot write. SQLite opens a file it may not write
/// (made immutable, or on a file system remounted read-only) read-only without a word,
/// and such a connection would refuse every write until a restart, even after the file is
/// writable again; failing it here makes the pool try again on the next write instead. A
/// header write inside a transaction that is rolled back changes nothing on disk.
fn refuse_read_only_writer(
    connection: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        connection
            .execute("BEGIN IMMEDIATE; PRAGMA user_version = 0; ROLLBACK")
            .await?;
        Ok(())
    })
}

/// Keeps a released connection only if sqlx counts no open transaction on it.
///
/// sqlx counts transactions itself and misses SQLite's own rollback: when a COMMIT fails
/// with SQLITE_IOERR or SQLITE_FULL (file unwritable, disk full), SQLite has already rolled
/// back, so sqlx's ROLLBACK fails and its count stays at one. Every later transaction on
/// that connection would then be a SAVEPOINT inside one that never commits: writes
/// acknowledged, never stored. Closing the connection instead rolls it back for good.
fn reuse_only_outside_transactions(
    connection: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    type Transactions = <Sqlite as Database>::TransactionManager;
    Box::pin(async move {
        if Transactions::get_transaction_depth(connection) == 0 {
            return Ok(true);
        }
        // A dropped transaction queues its ROLLBACK on the connection's worker thread; a
        // round trip to that worker lets it run before the count is read again.
        drop(connection.lock_handle().await?);
        Ok(Transactions::get_transaction_depth(connection) == 0)
    })
}

sql_store!(SqliteStore, sqlx::Sqlite);
