//! Two instances on one database (SQLite by default, PostgreSQL with `TEST_DATABASE_URL`) count
//! views, clicks and shares of the same event and write them in batches at the same time: the
//! counts add up, none overwrites another.

use tg_events::{
    analytics::{Channel, Counter},
    store::Store,
};
use tg_platform::{
    testing::{fresh_db, TestDb},
    with_db,
};

async fn test_db() -> TestDb {
    fresh_db(vec![tg_messaging::migrations(), tg_events::migrations()], 4).await.unwrap()
}

/// Count 300 views, 100 clicks and 50 Telegram shares on one instance, flushing as the
/// maintenance task does (drain, add, put back on failure) every few counts.
async fn count_and_flush(store: &Store) {
    let counter = Counter::default();
    for i in 0..300 {
        counter.view("ev1", &format!("ip:10.0.{}.{}", i / 250, i % 250));
        if i % 3 == 0 {
            counter.click("ev1", &format!("user:{i}"));
        }
        if i % 6 == 0 {
            counter.share("ev1", Channel::Telegram, &format!("user:{i}"));
        }
        if i % 7 == 0 {
            for (id, delta) in counter.drain() {
                store.add_analytics(&id, &delta).await.unwrap();
            }
        }
        tokio::task::yield_now().await;
    }
    for (id, delta) in counter.drain() {
        store.add_analytics(&id, &delta).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_flushing_counts_of_one_event_add_them() {
    let test = test_db().await;
    with_db!(&test.db, pool => sqlx::query(
        "INSERT INTO events_events (id, slug, organizer_id, status, visibility, priority, category_id, category_name,
            venue_type, start_at, end_at, min_price, max_price, search_text, document, created_at, updated_at,
            created_by, updated_by)
         VALUES ('ev1', 'ev1', 'o1', 'published', 'public', 0, 'c', 'C', 'physical', 0, 1, 0, 0, '', '{}', 0, 0, 'u', 'u')")
        .execute(pool).await.map(|_| ()))
    .unwrap();
    let a = Store { db: test.connect_again(4).await.unwrap() };
    let b = Store { db: test.connect_again(4).await.unwrap() };
    tokio::join!(count_and_flush(&a), count_and_flush(&b));
    let row: (i64, i64, i64, i64) = with_db!(&test.db, pool => sqlx::query_as(
        "SELECT views, clicks, share_telegram, popularity FROM events_events WHERE id = 'ev1'").fetch_one(pool).await)
    .unwrap();
    assert_eq!(row, (600, 200, 100, 600 + 5 * 200 + 10 * 100));
}
