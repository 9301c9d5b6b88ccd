//! Login throttling: one token bucket per account and one per client IP (governor's GCRA). Registration
//! throttling: one bucket per client network.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    time::Duration,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Attempts an account may take in a burst; one more is allowed every `per_account_period`.
    pub per_account_burst: u32,
    pub per_account_period: Duration,
    pub per_ip_burst: u32,
    pub per_ip_period: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_account_burst: 10,
            per_account_period: Duration::from_secs(60),
            per_ip_burst: 30,
            per_ip_period: Duration::from_secs(2),
        }
    }
}

pub struct LoginLimiter {
    accounts: DefaultKeyedRateLimiter<String>,
    ips: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(burst: u32, period: Duration) -> Quota {
    Quota::with_period(period.max(Duration::from_millis(1)))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero burst"))
}

impl LoginLimiter {
    pub fn new(l: LoginLimits) -> Self {
        LoginLimiter {
            accounts: RateLimiter::keyed(quota(l.per_account_burst, l.per_account_period)),
            ips: RateLimiter::keyed(quota(l.per_ip_burst, l.per_ip_period)),
        }
    }

    /// Take one attempt for this account and IP; `Err(seconds)` to wait when either is exhausted.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), u64> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |nu: governor::NotUntil<_>| nu.wait_time_from(clock.now()).as_secs() + 1;
        self.ips.check_key(&ip).map_err(wait)?;
        self.accounts.check_key(&account.to_owned()).map_err(wait)?;
        Ok(())
    }

    /// Drop buckets that are full again, so memory stays bounded.
    pub fn prune(&self) {
        self.accounts.retain_recent();
        self.ips.retain_recent();
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RegisterLimits {
    /// Registrations a client may make in a burst; one more is allowed every `per_ip_period`.
    pub per_ip_burst: u32,
    pub per_ip_period: Duration,
}

impl Default for RegisterLimits {
    fn default() -> Self {
        RegisterLimits { per_ip_burst: 10, per_ip_period: Duration::from_secs(6) }
    }
}

pub struct RegisterLimiter {
    networks: DefaultKeyedRateLimiter<IpAddr>,
}

impl RegisterLimiter {
    pub fn new(l: RegisterLimits) -> Self {
        RegisterLimiter { networks: RateLimiter::keyed(quota(l.per_ip_burst, l.per_ip_period)) }
    }

    /// Take one registration for this client; `Err(seconds)` to wait when its bucket is empty.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let clock = governor::clock::DefaultClock::default();
        self.networks.check_key(&network(ip)).map_err(|nu| nu.wait_time_from(clock.now()).as_secs() + 1)
    }

    pub fn prune(&self) {
        self.networks.retain_recent();
    }
}

/// The bucket's key: the address, or its /64 for IPv6, since one host usually gets a whole /64 and
/// could otherwise register from a new address every time.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_ip_buckets_are_independent() {
        let l = LoginLimiter::new(LoginLimits {
            per_account_burst: 2,
            per_account_period: Duration::from_secs(3600),
            per_ip_burst: 3,
            per_ip_period: Duration::from_secs(3600),
        });
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check("a@x.io", ip1).is_ok());
        assert!(l.check("a@x.io", ip2).is_ok());
        // Third attempt on the same account is refused from any IP.
        assert!(l.check("a@x.io", ip2).unwrap_err() >= 1);
        // Other accounts from ip1 still pass until the IP bucket (3) is empty.
        assert!(l.check("b@x.io", ip1).is_ok());
        assert!(l.check("c@x.io", ip1).is_ok());
        assert!(l.check("d@x.io", ip1).is_err());
    }

    #[test]
    fn registrations_are_counted_per_network() {
        let l = RegisterLimiter::new(RegisterLimits { per_ip_burst: 2, per_ip_period: Duration::from_secs(3600) });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(same_64).is_ok());
        let wait = l.check(a).unwrap_err();
        assert!((3599..=3601).contains(&wait), "{wait}");
        assert!(l.check(other_64).is_ok());
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.check(v4).is_ok() && l.check("10.0.0.2".parse().unwrap()).is_ok());
        // An IPv4-mapped IPv6 address is the same client as its IPv4 address.
        assert!(l.check(v4).is_ok());
        assert!(l.check("::ffff:10.0.0.1".parse().unwrap()).is_err());
    }
}
