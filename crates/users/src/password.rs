//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane, per OWASP).
//! Hashing runs on the blocking pool so it never stalls the async workers, at most one hash per CPU at a
//! time: each takes 19 MiB, and unbounded (the blocking pool grows to 512 threads) a burst of
//! registrations or logins took gigabytes.

use std::sync::{Arc, OnceLock};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::Password;

/// Hashes allowed to run at once: one per CPU, as more only queue for the CPU while holding memory.
fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(concurrency())))
}

fn concurrency() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1)
}

/// Run `work` on the blocking pool once a permit is free. The permit moves into the task so it is
/// held until the hash is done, even if the caller (a dropped request) stops waiting.
async fn run_bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let permit: OwnedSemaphorePermit = permits().clone().acquire_owned().await?;
    Ok(tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await?)
}

pub async fn hash(password: &Password) -> anyhow::Result<String> {
    let pw = password.expose().to_owned();
    run_bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

/// Verify `candidate` against a stored PHC hash. With no stored hash (unknown account) a dummy hash is
/// checked anyway, so the response time does not reveal whether the account exists.
pub async fn verify(candidate: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let candidate = candidate.to_owned();
    let stored = stored.map(str::to_owned);
    run_bounded(move || {
        let dummy = DUMMY.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(b"dummy password", &salt).map(|h| h.to_string()).unwrap_or_default()
        });
        let phc = stored.as_deref().unwrap_or(dummy);
        let ok = PasswordHash::new(phc)
            .map(|h| Argon2::default().verify_password(candidate.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let pw = Password::parse("correct horse battery").unwrap();
        let a = hash(&pw).await.unwrap();
        let b = hash(&pw).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salt must differ");
        assert!(verify("correct horse battery", Some(&a)).await);
        assert!(!verify("wrong horse battery", Some(&a)).await);
        assert!(!verify("correct horse battery", None).await);
        assert!(!verify("x", Some("not a hash")).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_at_once_than_permits() {
        // Other tests may hold permits meanwhile, so only the upper bound is exact.
        let limit = concurrency();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..limit * 4 + 4)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run_bounded(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=limit).contains(&most), "{most} at once with {limit} permits");
    }
}
