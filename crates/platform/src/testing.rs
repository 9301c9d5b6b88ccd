//! A database of its own for a test, as the API tests make them: a new PostgreSQL database when
//! `TEST_DATABASE_URL` is set (`postgres://…/postgres`, the server to create it on), else a SQLite
//! file in a new temporary directory (a file, not `sqlite::memory:`, so that several pools, like
//! several instances of a service, share it).

use std::path::PathBuf;

use anyhow::Context;

use crate::db::{Db, ServiceMigrations};

/// A migrated database; its SQLite directory is removed when dropped (PostgreSQL test databases
/// are named `tg_test_*`, which CI drops before a run).
pub struct TestDb {
    pub db: Db,
    /// The URL another pool (another instance) connects with.
    pub url: String,
    dir: Option<PathBuf>,
}

impl TestDb {
    /// Another pool on the same database, as a second instance of a service has.
    pub async fn connect_again(&self, max_connections: u32) -> anyhow::Result<Db> {
        Db::connect(Some(&self.url), std::path::Path::new("."), max_connections).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh database with `services` migrated, and a pool of `max_connections` on it.
pub async fn fresh_db(services: Vec<ServiceMigrations>, max_connections: u32) -> anyhow::Result<TestDb> {
    let name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let (url, dir) = match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.context("connecting to TEST_DATABASE_URL")?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
            (format!("{base}/{name}"), None)
        }
        None => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite://{}", dir.join("test.db").display()), Some(dir))
        }
    };
    let db = Db::connect(Some(&url), std::path::Path::new("."), max_connections).await?;
    db.migrate(services).await?;
    Ok(TestDb { db, url, dir })
}
