//! A database of its own for one benchmark run.

use std::future::Future;

use anyhow::Context;
use rand::Rng;
use sqlx::{Connection, PgConnection};
use ticketgw::config::Settings;

/// Settings pointing at a new database: a fresh PostgreSQL database on the server of `admin_url`, or a
/// SQLite file in a new temporary directory. The returned future removes it again.
pub async fn fresh_database(
    admin_url: Option<&str>,
    prefix: &str,
) -> anyhow::Result<(Settings, impl Future<Output = ()>)> {
    let name = format!("{prefix}_{:08x}", rand::thread_rng().gen::<u32>());
    let data_dir = std::env::temp_dir().join(&name);
    let mut settings = Settings { data_dir: Some(data_dir.clone()), ..Default::default() };
    let admin_url = admin_url.map(str::to_owned);
    if let Some(admin) = &admin_url {
        let mut conn = PgConnection::connect(admin).await.context("connecting to --database-url")?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.context("CREATE DATABASE")?;
        let mut url = url::Url::parse(admin).context("--database-url is not a URL")?;
        url.set_path(&format!("/{name}"));
        settings.database_url = Some(url.to_string());
    }
    let cleanup = async move {
        let _ = std::fs::remove_dir_all(&data_dir);
        if let Some(admin) = admin_url {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
            }
        }
    };
    Ok((settings, cleanup))
}
