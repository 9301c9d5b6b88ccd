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
