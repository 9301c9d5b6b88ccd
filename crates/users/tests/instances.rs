//! Several instances of the users service on one database (SQLite by default, PostgreSQL with
//! `TEST_DATABASE_URL`) rotating the token signing key: they add one key between them, and a token
//! signed by any instance verifies on every other.

use std::{sync::Arc, time::Duration};

use tg_platform::{
    auth::Role,
    testing::{fresh_db, TestDb},
    with_db,
};
use tg_users::{
    issuer::{Issuer, Subject},
    key_seal::KeySeal,
    store::Store,
};

const ISS: &str = "https://tg.test";
const TTL: Duration = Duration::from_secs(900);
const ROTATION: Duration = Duration::from_secs(3600);

async fn test_db() -> TestDb {
    fresh_db(vec![tg_messaging::migrations(), tg_users::migrations()], 4).await.unwrap()
}

async fn store(test: &TestDb) -> Store {
    Store { db: test.connect_again(4).await.unwrap() }
}

async fn keys(test: &TestDb) -> i64 {
    with_db!(&test.db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users_signing_keys")
        .fetch_one(pool).await)
    .unwrap()
}

/// Every key made a rotation period (and a minute) older: a rotation is due.
async fn age_keys(test: &TestDb) {
    with_db!(&test.db, pool => sqlx::query("UPDATE users_signing_keys SET created_at = created_at - $1")
        .bind(ROTATION.as_millis() as i64 + 60_000).execute(pool).await.map(|_| ()))
    .unwrap();
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Tokens minted by each instance verify on each.
async fn trust_each_other(instances: &[Arc<Issuer>]) {
    for (i, signer) in instances.iter().enumerate() {
        let token = signer.mint_access(&Subject::user(&format!("u{i}"), "U", &[Role::User])).await.unwrap();
        for verifier in instances {
            assert_eq!(verifier.verify(&token).await.map(|c| c.sub), Ok(format!("u{i}")));
        }
    }
}

/// Three instances start at once on an empty store, then rotate at the same moment, three times:
/// one key is made each time, not one per instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_rotating_at_once_add_one_key_between_them() {
    let test = test_db().await;
    let (a, b, c) = (store(&test).await, store(&test).await, store(&test).await);
    let (a, b, c) = tokio::join!(
        Issuer::start(a, ISS.into(), TTL, ROTATION, sealed()),
        Issuer::start(b, ISS.into(), TTL, ROTATION, sealed()),
        Issuer::start(c, ISS.into(), TTL, ROTATION, sealed())
    );
    let instances = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(keys(&test).await, 1, "one first key");
    trust_each_other(&instances).await;
    for round in 1..=3 {
        age_keys(&test).await;
        let (ra, rb, rc) =
            tokio::join!(instances[0].rotate_if_due(), instances[1].rotate_if_due(), instances[2].rotate_if_due());
        ra.unwrap();
        rb.unwrap();
        rc.unwrap();
        assert_eq!(keys(&test).await, 1 + round, "one new key in round {round}");
        trust_each_other(&instances).await;
    }
}

/// An instance that reloaded the keys a moment ago meets a token of another instance that has just
/// rotated: it verifies, because a new key is published (JWKS) well before it signs anything.
#[tokio::test]
async fn a_new_key_signs_only_once_every_instance_knows_it() {
    let test = test_db().await;
    let a = Issuer::start(store(&test).await, ISS.into(), TTL, ROTATION, sealed()).await.unwrap();
    let b = Issuer::start(store(&test).await, ISS.into(), TTL, ROTATION, sealed()).await.unwrap();
    let old = kid(&a.mint_access(&Subject::user("u1", "U", &[Role::User])).await.unwrap());
    // B looks at the keys (its maintenance pass, or an unknown key id); it will not look again for
    // a while.
    b.rotate_if_due().await.unwrap();
    age_keys(&test).await;
    a.rotate_if_due().await.unwrap();
    assert_eq!(keys(&test).await, 2);
    let published: Vec<String> =
        a.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    assert_eq!(published.len(), 2, "the new key is published at once");
    let token = a.mint_access(&Subject::user("u2", "U", &[Role::User])).await.unwrap();
    assert_eq!(b.verify(&token).await.map(|c| c.sub), Ok("u2".to_owned()));
    assert_eq!(kid(&token), old, "the new key signs nothing yet");
}

/// Every instance seals the keys with the one secret they share (`SIGNING_KEYS_SECRET`).
fn sealed() -> KeySeal {
    KeySeal::new(Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), None).unwrap()
}
