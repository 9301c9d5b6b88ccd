//! One query layer over two concrete backends.
//!
//! `Db` holds either a SQLite or a PostgreSQL pool. Services write portable SQL with `$1`-style
//! placeholders (both drivers accept them) and run it through [`with_db!`], which expands the same
//! code once per backend, so queries stay statically typed without sqlx's `Any` driver.
//! Each service owns its tables and its migrations (a version range of its own in the shared
//! `_sqlx_migrations` table), so a service can later move to a database of its own.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Migrations of one service, embedded for both backends.
pub struct ServiceMigrations {
    pub service: &'static str,
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// Run `$body` with `$pool` bound to the concrete pool of `$db`.
///
/// ```ignore
/// let n: i64 = with_db!(&self.db, pool => sqlx::query_scalar("SELECT 1").fetch_one(pool).await)?;
/// ```
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Run `$body` inside a write transaction bound to `$tx` (`&mut Transaction`), committing when it
/// returns `Ok`. On SQLite the transaction starts with `BEGIN IMMEDIATE`, so writers queue on the
/// database lock at the start instead of failing with SQLITE_BUSY half-way through.
#[macro_export]
macro_rules! with_tx {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => {
                let mut guard = pool.begin_with("BEGIN IMMEDIATE").await?;
                let $tx = &mut *guard;
                let out = $body;
                if out.is_ok() {
                    guard.commit().await?;
                }
                out
            }
            $crate::db::Db::Postgres(pool) => {
                let mut guard = pool.begin().await?;
                let $tx = &mut *guard;
                let out = $body;
                if out.is_ok() {
                    guard.commit().await?;
                }
                out
            }
        }
    };
}

/// A value bound to a query whose SQL is built at run time (`$1..$n` placeholders matching the args).
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// Bind every [`Arg`] of `$args` to the sqlx query `$q`, in order.
#[macro_export]
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::db::Arg::Int(v) => q.bind(*v),
                $crate::db::Arg::Float(v) => q.bind(*v),
                $crate::db::Arg::Text(v) => q.bind(v.as_str()),
                $crate::db::Arg::Bool(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Placeholder list `($a, $b, …), (…)` for `rows` rows of `width` values, numbered from `first`.
pub fn placeholders(rows: usize, width: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (0..width).map(|c| format!("${}", first + r * width + c)).collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// Connect to `database_url` when given (postgres:// or sqlite:), else to `ticketgw.db` in `data_dir`.
    pub async fn connect(database_url: Option<&str>, data_dir: &Path, max_connections: u32) -> anyhow::Result<Db> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .context("connecting to PostgreSQL")?;
                Ok(Db::Postgres(pool))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let opts = SqliteConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
                Self::sqlite(opts.create_if_missing(true), max_connections).await
            }
            Some(other) => anyhow::bail!(
                "DATABASE_URL must start with postgres:// or sqlite: (got scheme of {:?})",
                other.split(':').next().unwrap_or_default()
            ),
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating data directory {}", data_dir.display()))?;
                let opts = SqliteConnectOptions::new().filename(data_dir.join("ticketgw.db")).create_if_missing(true);
                Self::sqlite(opts, max_connections).await
            }
        }
    }

    async fn sqlite(opts: SqliteConnectOptions, max_connections: u32) -> anyhow::Result<Db> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(opts)
            .await
            .context("opening SQLite database")?;
        Ok(Db::Sqlite(pool))
    }

    /// Row-lock suffix for a `SELECT` inside a write transaction: `FOR UPDATE` on PostgreSQL; nothing on
    /// SQLite, whose `BEGIN IMMEDIATE` already holds the database's write lock.
    pub fn for_update(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE",
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Apply every pending migration of each service.
    pub async fn migrate(&self, services: Vec<ServiceMigrations>) -> anyhow::Result<()> {
        for svc in services {
            let mut migrator = match self {
                Db::Sqlite(_) => svc.sqlite,
                Db::Postgres(_) => svc.postgres,
            };
            // Other services' versions live in the same table; they are not "missing" for us.
            migrator.set_ignore_missing(true);
            let res = with_db!(self, pool => migrator.run(pool).await);
            res.with_context(|| format!("migrating {} tables", svc.service))?;
        }
        Ok(())
    }

    /// Readiness probe: one round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// The pool's (open connections, idle connections, limit).
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        with_db!(self, pool => (pool.size(), pool.num_idle(), pool.options().get_max_connections()))
    }

    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

/// True when the error is a unique-constraint violation, on either backend.
/// Whether `err` says the database is unreachable or briefly refusing work (down, restarting,
/// refusing connections, busy, a serialization conflict): trying again later may succeed.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => {
            let code = e.code().unwrap_or_default();
            // PostgreSQL: 08 connection exception, 53 insufficient resources, 57P0x shutdown or
            // "cannot connect now", 55000 a database not accepting connections (ALLOW_CONNECTIONS
            // false), 40001/40P01 serialization failure or deadlock.
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (and their extended codes, same low byte).
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "55000" && e.message().contains("not currently accepting connections")
                || code == "40001"
                || code == "40P01"
                || e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transient_errors_are_told_from_bad_input() {
        // PostgreSQL's codes are five characters; some look like numbers (22021 = NUL in text),
        // which must not be read as SQLite's busy (5) by their low byte.
        let pg = PgConnectOptions::new().host("127.0.0.1").port(1).database("x");
        let refused = <sqlx::PgConnection as sqlx::Connection>::connect_with(&pg).await.expect_err("nothing on port 1");
        assert!(is_transient(&refused), "{refused}");
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        let dir = std::env::temp_dir().join(format!("tg-db-{}", uuid::Uuid::new_v4().simple()));
        let db = Db::connect(None, &dir, 1).await.unwrap();
        let Db::Sqlite(pool) = &db else { unreachable!() };
        let bad = sqlx::query("SELECT * FROM no_such_table").execute(pool).await.unwrap_err();
        assert!(!is_transient(&bad), "{bad}");
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
