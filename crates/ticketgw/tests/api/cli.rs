//! The binary's subcommands, run as a newcomer would.

use std::process::Command;

use crate::helpers::{fresh_settings, spawn_with};

fn ticketgw(args: &[&str], settings: &ticketgw::config::Settings) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketgw"));
    cmd.args(args).env_remove("DATABASE_URL").env_remove("TICKETGW_DATA_DIR");
    if let Some(url) = &settings.database_url {
        cmd.env("DATABASE_URL", url);
    }
    if let Some(dir) = &settings.data_dir {
        cmd.env("TICKETGW_DATA_DIR", dir);
    }
    cmd.output().expect("run ticketgw")
}

#[tokio::test]
async fn migrate_user_create_and_demo() {
    let (settings, dir) = fresh_settings().await;
    let out = ticketgw(&["migrate"], &settings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = ticketgw(
        &[
            "user",
            "create",
            "--email",
            "Boss@Example.com",
            "--password",
            "a long password",
            "--display-name",
            "Boss",
            "--role",
            "admin",
        ],
        &settings,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ticketgw(
        &["user", "create", "--email", "x@example.com", "--password", "short", "--display-name", "X"],
        &settings,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    // In a users pod: the password on standard input, the database from USERS_DATABASE_URL (the
    // data directory here is another, empty one).
    let users_db = match (&settings.database_url, &settings.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => format!("sqlite:{}", dir.join("ticketgw.db").display()),
        (None, None) => unreachable!("fresh settings name a database"),
    };
    let elsewhere = std::env::temp_dir().join(format!("tg-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketgw"))
        .args(["user", "create", "--email", "pod@example.com", "--password-stdin", "--display-name", "Pod"])
        .env_remove("DATABASE_URL")
        .env_remove("TICKETGW_USER_PASSWORD")
        .env("TICKETGW_DATA_DIR", &elsewhere)
        .env("USERS_DATABASE_URL", &users_db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"a password from stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&elsewhere);

    let out = ticketgw(&["demo"], &settings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("organizer@example.com"));
    // Loading the demo twice is harmless.
    assert!(ticketgw(&["demo"], &settings).status.success());

    // A server on the same database sees what the commands wrote.
    let s2 = settings.clone();
    let app = spawn_with(move |s| *s = s2).await;
    let tokens = app.login("boss@example.com", "a long password").await;
    let me: serde_json::Value = app.get("/api/v1/me", tokens["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["roles"], serde_json::json!(["user", "admin"]));
    app.login("pod@example.com", "a password from stdin").await;
    let org = app.login("organizer@example.com", "ticketgw-demo-organizer").await;
    let profile: serde_json::Value =
        app.get("/api/v1/me/organizer", org["access_token"].as_str()).await.json().await.unwrap();
    assert_eq!(profile["name"], "Cambodia Tech Association");
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn serve_help_documents_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketgw")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "TICKETGW_LISTEN",
        "TICKETGW_DATA_DIR",
        "TICKETGW_TARGET",
        "OIDC_ISSUER",
        "RECAPTCHA_SECRET",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(var), "{var} missing from serve --help");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ticketgw"))
        .args(["serve", "--target", "nonsense", "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown target"));
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_from_the_command_line_and_invariants_checked() {
    let (settings, dir) = fresh_settings().await;
    assert!(ticketgw(&["migrate"], &settings).status.success());
    let db = tg_platform::db::Db::connect(settings.database_url.as_deref(), &settings.data_dir(), 1).await.unwrap();
    for (consumer, id) in [("payments", "m-1"), ("notifications", "m-1"), ("notifications", "m-2")] {
        let body = serde_json::json!({"id": id, "routing_key": "payment.succeeded", "occurred_at": "2026-11-29T00:00:00Z", "payload": {}});
        tg_messaging::dead_letters::record(
            &db,
            consumer,
            id,
            "payment.succeeded",
            &body.to_string(),
            "poison message: x",
        )
        .await
        .unwrap();
    }

    let out = ticketgw(&["messages", "dead-letters", "--consumer", "notifications"], &settings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["consumer"] == "notifications" && l["error"] == "poison message: x"));

    // An id two consumers share needs the consumer named; then only that one is replayed.
    let out = ticketgw(&["messages", "replay", "m-1"], &settings);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--consumer"));
    let out = ticketgw(&["messages", "replay", "m-1", "--consumer", "payments"], &settings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!ticketgw(&["messages", "replay", "nope"], &settings).status.success());
    let left = tg_messaging::dead_letters::list(&db, None, 10).await.unwrap();
    assert_eq!(left.iter().map(|d| (d.consumer.as_str(), d.id.as_str())).collect::<Vec<_>>().len(), 2);
    assert!(left.iter().all(|d| d.consumer == "notifications"));
    let out = ticketgw(&["messages", "replay", "--all"], &settings);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("2 dead letter(s) replayed"));
    assert_eq!(tg_messaging::dead_letters::count(&db).await.unwrap(), 0);
    let replays: i64 = tg_platform::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM messaging_audit_log WHERE actor = 'cli' AND action = 'dead_letter.replayed'")
        .fetch_one(pool).await)
    .unwrap();
    assert_eq!(replays, 3, "every replay is in the audit log");

    // The invariants hold on an empty platform; a counter that disagrees with its rows is named.
    let out = ticketgw(&["check", "--settled"], &settings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    tg_platform::with_db!(&db, pool => sqlx::query(
        "INSERT INTO bookings_inventory (event_id, type_id, quantity, sold, held) VALUES ('e', 't', 10, 3, 0)")
        .execute(pool).await.map(|_| ()))
    .unwrap();
    let out = ticketgw(&["check"], &settings);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("e/t: counters held 0 sold 3, rows held 0 sold 0"));
    db.close().await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `METRICS_LISTEN`: `/metrics` on a port of its own, and no longer on the service port.
#[tokio::test]
async fn metrics_listen_moves_metrics_to_their_own_port() {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (main, metrics) = (free(), free());
    let dir = std::env::temp_dir().join(format!("tg-metrics-{}", uuid::Uuid::new_v4().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketgw"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("TICKETGW_DATA_DIR", &dir)
        .env("TICKETGW_LISTEN", main.to_string())
        .env("METRICS_LISTEN", metrics.to_string())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !http.get(format!("http://{main}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(std::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let res = http.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert!(res.text().await.unwrap().contains("ticketgw_build_info"));
    let res = http.get(format!("http://{main}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND, "not on the service port, even from this machine");
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
