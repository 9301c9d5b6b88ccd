//! Limits applied before a service is asked anything: requests per client IP (governor's GCRA, one
//! bucket per address) and the size of request bodies.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::Limited;
use tg_platform::ApiError;

use crate::{edge::peer_ip, proxy::payload_too_large};

/// How often buckets that are full again are dropped, so memory follows the clients seen recently.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct IpLimits {
    /// Every request.
    general: DefaultKeyedRateLimiter<IpAddr>,
    /// `POST /api/v1/auth/login` and `/register` on top of the general one: password guessing and
    /// account farming are cheap for a client and costly for us (argon2).
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    pruned: Mutex<Instant>,
}

impl IpLimits {
    /// Zero burst or rate would refuse everything; they count as 1.
    pub(crate) fn new(burst: u32, per_second: u32, sign_in_burst: u32, sign_in_period: Duration) -> Self {
        let nonzero = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        let general = Quota::per_second(nonzero(per_second)).allow_burst(nonzero(burst));
        let sign_in = Quota::with_period(sign_in_period.max(Duration::from_millis(1)))
            .expect("a non-zero period")
            .allow_burst(nonzero(sign_in_burst));
        IpLimits {
            general: RateLimiter::keyed(general),
            sign_in: RateLimiter::keyed(sign_in),
            pruned: Mutex::new(Instant::now()),
        }
    }

    /// Take one request for `ip`; `Err(seconds)` to wait when a bucket is empty.
    fn check(&self, ip: IpAddr, sign_in: bool) -> Result<(), u64> {
        self.prune_now_and_then();
        let clock = governor::clock::DefaultClock::default();
        // Whole seconds, rounded up: a client that waits what Retry-After says is let in.
        let wait = |nu: governor::NotUntil<_>| nu.wait_time_from(clock.now()).as_millis().div_ceil(1000) as u64;
        self.general.check_key(&ip).map_err(wait)?;
        if sign_in {
            self.sign_in.check_key(&ip).map_err(wait)?;
        }
        Ok(())
    }

    fn prune_now_and_then(&self) {
        // One request prunes; the others do not wait for it.
        let Ok(mut pruned) = self.pruned.try_lock() else { return };
        if pruned.elapsed() < PRUNE_EVERY {
            return;
        }
        *pruned = Instant::now();
        for limiter in [&self.general, &self.sign_in] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The bucket of a client: its address, or its /64 for IPv6, since one host usually holds a whole
/// /64 and could otherwise take a fresh bucket with every address.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Middleware: 429 with `Retry-After` once the client's bucket is empty; the service is not asked.
pub(crate) async fn rate_limit(State(limits): State<Arc<IpLimits>>, req: Request, next: Next) -> Response {
    let ip = bucket(peer_ip(&req).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    let sign_in = req.method() == Method::POST
        && matches!(
            req.uri().path(),
            "/api/v1/auth/login"
                | "/api/v1/auth/register"
                | "/api/v1/auth/forgot-password"
                | "/api/v1/auth/reset-password"
        );
    match limits.check(ip, sign_in) {
        Ok(()) => next.run(req).await,
        Err(seconds) => ApiError::too_many_requests(seconds).into_response(),
    }
}

/// Middleware: 413 for a body declared larger than `limit`, and a body that turns out larger while
/// streaming is cut at `limit` (the proxy then answers 413: see `Proxy::forward`).
pub(crate) async fn limit_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return payload_too_large().into_response();
    }
    next.run(req.map(|body| Body::new(Limited::new(body, limit)))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_per_address_and_ipv6_network() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(bucket(v4), v4);
        assert_eq!(bucket("::ffff:203.0.113.7".parse().unwrap()), v4);
        assert_eq!(bucket("2001:db8:1:2:aaaa::1".parse().unwrap()), bucket("2001:db8:1:2:bbbb::9".parse().unwrap()));
        assert_ne!(bucket("2001:db8:1:2::1".parse().unwrap()), bucket("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn sign_in_is_stricter_and_ips_are_independent() {
        let limits = IpLimits::new(100, 100, 2, Duration::from_secs(3600));
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        assert_eq!(limits.check(a, true), Ok(()));
        assert_eq!(limits.check(a, true), Ok(()));
        let wait = limits.check(a, true).unwrap_err();
        assert!((3500..=3600).contains(&wait), "{wait}");
        assert_eq!(limits.check(a, false), Ok(()), "other routes still pass");
        assert_eq!(limits.check(b, true), Ok(()), "another client has its own bucket");
    }
}
