//! The usage batches of a SQLite store, written on a thread of their own over a connection of
//! their own (rusqlite): each statement is a plain call into SQLite, where sqlx would make a
//! round trip to its connection's worker thread per statement (six or seven per batch). The
//! batch's logic is `batch::Batch::write`, the same as on PostgreSQL.
//!
//! The same guarantees as the pooled path: `BEGIN IMMEDIATE` … `COMMIT` with
//! `synchronous=FULL`, so an answered batch is durable (a batch that only completes records
//! written earlier commits with `synchronous=NORMAL`: the write-ahead log holds it at once, the
//! next full commit flushes it, `Batch::needs_flush`); a batch that fails closes the connection
//! (closing rolls back whatever was open) and the next one opens a fresh one, so the writer
//! heals by itself once storage can write again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Mutex, mpsc};
use std::task::{Context, Poll, Waker};

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, ToSql, params_from_iter};
use tokio::sync::oneshot;

use super::batch::{Arg, Batch, Statements};
use super::{Dialect, SQLITE_CONNECTION_PRAGMAS, sqlite_code_class};
use crate::store::{ErrorClass, Outage, StoreError, Unwritten};

/// Batches in flight are few (the usage writer waits for each), so the queue is unbounded.
struct Job {
    batch: Batch,
    done: oneshot::Sender<Result<Unwritten, StoreError>>,
}

#[derive(Debug)]
pub(super) struct SqliteWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl SqliteWriter {
    /// Starts the thread that writes the batches of the database at `path` (which exists).
    pub fn start(path: PathBuf) -> Result<SqliteWriter, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("usage-sqlite".into()).spawn(move || run(&path, queue)).map_err(|e| {
                tracing::error!("cannot start the SQLite usage writer: {e}");
                StoreError::Unavailable(Outage::Failed)
            })?;
        Ok(SqliteWriter { jobs: Mutex::new(Some(jobs)), thread: Mutex::new(Some(thread)) })
    }

    /// Writes `batch` in one durable transaction.
    pub async fn commit(&self, batch: Batch) -> Result<Unwritten, StoreError> {
        let (done, answer) = oneshot::channel();
        let sent = match &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(jobs) => jobs.send(Job { batch, done }).is_ok(),
            None => false,
        };
        if !sent {
            // Closed, as a closed pool would say.
            return Err(StoreError::Unavailable(Outage::Unreachable));
        }
        answer.await.map_err(|_| StoreError::Unavailable(Outage::Failed))?
    }

    /// Lets the thread finish the batch it holds and waits until its connection is closed.
    pub async fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The writer's connection and its `synchronous` setting (FULL when opened).
struct Writer {
    conn: Connection,
    flushing: bool,
}

fn run(path: &Path, queue: mpsc::Receiver<Job>) {
    let mut conn = None;
    while let Ok(Job { batch, done }) = queue.recv() {
        let result = commit(&mut conn, path, &batch);
        if result.is_err() {
            // Closing rolls back what was open; the next batch starts on a fresh connection.
            conn = None;
        }
        let _ = done.send(result);
    }
}

fn commit(writer: &mut Option<Writer>, path: &Path, batch: &Batch) -> Result<Unwritten, StoreError> {
    let writer = match writer {
        Some(writer) => writer,
        None => writer.insert(Writer { conn: open(path)?, flushing: true }),
    };
    if writer.flushing != batch.needs_flush() {
        let mode = if batch.needs_flush() { "FULL" } else { "NORMAL" };
        writer.conn.execute_batch(&format!("PRAGMA synchronous = {mode}"))?;
        writer.flushing = batch.needs_flush();
    }
    let conn = &writer.conn;
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let unwritten = at_once(batch.write(&mut Tx(conn), Dialect::Sqlite))??;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(unwritten)
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(SQLITE_CONNECTION_PRAGMAS)?;
    Ok(conn)
}

/// The output of a future that never waits (every statement of [`Tx`] is done when called).
fn at_once<T>(future: impl Future<Output = T>) -> Result<T, StoreError> {
    match pin!(future).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => Ok(value),
        Poll::Pending => {
            tracing::error!("a usage batch waited on a synchronous connection");
            Err(StoreError::Unavailable(Outage::Failed))
        }
    }
}

/// An open write transaction on the writer's connection.
struct Tx<'c>(&'c Connection);

impl Statements for Tx<'_> {
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        Ok(self.0.prepare_cached(sql)?.execute(params_from_iter(args))? as u64)
    }

    async fn fetch_i64(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>, StoreError> {
        Ok(self.0.prepare_cached(sql)?.query_row(params_from_iter(args), |row| row.get(0)).optional()?)
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let null = ToSqlOutput::Owned(Value::Null);
        Ok(match *self {
            Arg::Int(v) => v.into(),
            Arg::Real(v) => v.into(),
            Arg::Text(v) => v.into(),
            Arg::MaybeInt(v) => v.map_or(null, Into::into),
            Arg::MaybeReal(v) => v.map_or(null, Into::into),
            Arg::MaybeText(v) => v.map_or(null, Into::into),
        })
    }
}

/// The class of an error of the writer's connection, read as `sql::class_of` reads sqlx's.
pub(in crate::store) fn class_of(e: &rusqlite::Error) -> ErrorClass {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => {
            // SQLITE_CONSTRAINT_PRIMARYKEY, _UNIQUE.
            if matches!(failure.extended_code, 1555 | 2067) {
                return ErrorClass::Conflict;
            }
            sqlite_code_class(failure.extended_code).unwrap_or(ErrorClass::Bug)
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => ErrorClass::Corrupt,
        _ => ErrorClass::Bug,
    }
}
