//! Several instances on one database (SQLite by default, PostgreSQL with `TEST_DATABASE_URL`): their
//! dispatchers share the pending deliveries and never send one twice.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, routing::post, Json, Router};
use tg_notifications::{
    store::{NewNotice, Store},
    Contact, Directory, NotificationsConfig, NotificationsService,
};
use tg_platform::{
    clock::now_ms,
    testing::{fresh_db, TestDb},
    with_db,
};

struct NoDirectory;

#[async_trait::async_trait]
impl Directory for NoDirectory {
    async fn contact(&self, _: &str) -> anyhow::Result<Option<Contact>> {
        Ok(None)
    }
    async fn event_title(&self, _: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    async fn ticket_holders(&self, _: &str) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn ticket_qr_codes(&self, _: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
}

type Sent = Arc<Mutex<HashMap<String, u32>>>;

/// A Telegram Bot API that counts the messages per chat; each send takes a moment.
async fn telegram() -> (String, Sent) {
    async fn send(State(sent): State<Sent>, Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        *sent.lock().unwrap().entry(body["chat_id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        Json(serde_json::json!({"ok": true}))
    }
    let sent = Sent::default();
    let app = Router::new().route("/botTOKEN/sendMessage", post(send)).with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, sent)
}

async fn test_db() -> TestDb {
    fresh_db(vec![tg_messaging::migrations(), tg_notifications::migrations()], 4).await.unwrap()
}

/// `n` notices, each with a Telegram delivery to its own chat.
async fn notices(store: &Store, n: usize) {
    for batch in 0..n / 10 {
        let notices: Vec<NewNotice> = (batch * 10..batch * 10 + 10)
            .map(|i| NewNotice {
                user_id: format!("u{i}"),
                kind: "welcome".into(),
                language: "en".into(),
                subject: format!("notice {i}"),
                body: String::new(),
                booking_id: None,
                private: false,
                channels: vec![("telegram", format!("chat-{i}"))],
            })
            .collect();
        assert!(store.record("test", &format!("m{batch}"), &notices).await.unwrap());
    }
}

/// Two instances' dispatchers at once on 100 pending deliveries: both work, each chat gets its
/// message once, every delivery is recorded sent with one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_send_each_delivery_once() {
    let test = test_db().await;
    let (url, sent) = telegram().await;
    notices(&Store { db: test.db.clone() }, 100).await;
    let config =
        NotificationsConfig { telegram_bot_token: Some("TOKEN".into()), telegram_api_url: url, ..Default::default() };
    let mut instances = Vec::new();
    for _ in 0..2 {
        let db = test.connect_again(4).await.unwrap();
        instances.push(NotificationsService::new(db, Arc::new(NoDirectory), config.clone()).unwrap());
    }
    let drain = |svc: Arc<NotificationsService>| async move {
        let mut total = 0;
        loop {
            match svc.dispatch_due().await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    };
    let (a, b) = tokio::join!(drain(instances[0].clone()), drain(instances[1].clone()));
    assert_eq!(a + b, 100, "each delivery attempted once ({a} + {b})");
    assert!(a > 0 && b > 0, "both dispatchers worked ({a} + {b})");
    let sent = sent.lock().unwrap().clone();
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(sent.len(), 100);
    let rows: Vec<(String, i64)> = with_db!(&test.db, pool => sqlx::query_as(
        "SELECT status, attempts FROM notifications_deliveries").fetch_all(pool).await)
    .unwrap();
    assert!(rows.iter().all(|(s, n)| s == "sent" && *n == 1), "{rows:?}");
}

/// A claimed delivery is not due for anyone else while the claim lasts; once it ran out another
/// dispatcher takes it, and the first one's late record of its attempt is refused.
#[tokio::test]
async fn a_claim_keeps_others_off_until_it_runs_out() {
    let test = test_db().await;
    let store = Store { db: test.db.clone() };
    notices(&store, 10).await;
    let other = Store { db: test.connect_again(2).await.unwrap() };
    let now = now_ms();
    let until = now + 300;
    let mut first = Vec::new();
    while let Some(d) = store.claim_due(now, until).await.unwrap() {
        first.push(d);
    }
    assert_eq!(first.len(), 10);
    assert!(other.claim_due(now_ms(), now_ms() + 60_000).await.unwrap().is_none(), "all claimed");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let now = now_ms();
    let taken = other.claim_due(now, now + 60_000).await.unwrap().expect("the claim ran out");
    let mine = first.iter().find(|d| d.id == taken.id).unwrap();
    assert!(!store.renew_claim(&mine.id, until, now + 60_000).await.unwrap(), "a lost claim is not renewed");
    assert!(!store.attempted(mine, None, 0, until).await.unwrap(), "a lost claim records nothing");
    assert!(other.attempted(&taken, None, 0, now + 60_000).await.unwrap());
    let status: String = with_db!(&test.db, pool => sqlx::query_scalar(
        "SELECT status FROM notifications_deliveries WHERE id = $1").bind(&taken.id).fetch_one(pool).await)
    .unwrap();
    assert_eq!(status, "sent");
}
