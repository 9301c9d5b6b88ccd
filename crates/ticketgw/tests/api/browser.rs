//! The web UI end to end in real headless Chromium: `tests/e2e/run.mjs` (playwright-core driving
//! Debian's chromium) against this application with its demo data, on this test's database.

use std::path::PathBuf;

use crate::helpers::spawn_with;

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e")
}

/// Whether Chromium and playwright-core are here (CI requires them).
fn browser_ready() -> Option<String> {
    let dir = e2e_dir();
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = dir.join("node_modules/playwright-core").exists() && std::path::Path::new(&chromium).exists();
    if !ready {
        // CI installs both (.ci/run) and sets TG_REQUIRE_CHROMIUM, so there this never skips.
        assert!(
            std::env::var_os("TG_REQUIRE_CHROMIUM").is_none(),
            "chromium ({chromium}) or playwright-core (npm ci in {}) is missing",
            dir.display()
        );
        eprintln!("SKIPPED: install Debian's chromium and run `npm ci` in tests/e2e for the browser tests");
        return None;
    }
    Some(chromium)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_end_to_end_in_chromium() {
    let Some(chromium) = browser_ready() else { return };
    let app = spawn_with(|s| s.demo = Some(true)).await;
    run_journeys(&app.base, &chromium).await;
}

/// The same journeys against the gateway, every service in its own process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_end_to_end_in_chromium_through_the_gateway() {
    let Some(chromium) = browser_ready() else { return };
    let _turn = crate::messaging::BROKER.lock().await;
    let Some(mut cluster) = crate::microservices::Cluster::with_databases(false).await else { return };
    cluster.demo().await;
    cluster.start_all().await;
    run_journeys(&cluster.url(""), &chromium).await;
}

async fn run_journeys(base: &str, chromium: &str) {
    let dir = e2e_dir();
    // E2E_SCREENSHOTS=dir keeps the screenshots (the README's come from here).
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("run.mjs").arg(base).current_dir(&dir).env("CHROMIUM_PATH", chromium);
    if let Some(shots) = std::env::var_os("E2E_SCREENSHOTS") {
        cmd.arg(shots);
    }
    let out = cmd.output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "end-to-end steps failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all end-to-end steps passed"));
}
