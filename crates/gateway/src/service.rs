//! The services behind the gateway and where each one listens.

use std::{fmt, str::FromStr};

/// A service process the gateway sends requests to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Users,
    Events,
    Bookings,
    Payments,
    Notifications,
    Admin,
    Web,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Users,
        Service::Events,
        Service::Bookings,
        Service::Payments,
        Service::Notifications,
        Service::Admin,
        Service::Web,
    ];

    /// The services with an API (and so an OpenAPI document): all but the web UI.
    pub const API: [Service; 6] =
        [Service::Users, Service::Events, Service::Bookings, Service::Payments, Service::Notifications, Service::Admin];

    /// The service's name, as `--target` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Users => "users",
            Service::Events => "events",
            Service::Bookings => "bookings",
            Service::Payments => "payments",
            Service::Notifications => "notifications",
            Service::Admin => "admin",
            Service::Web => "web",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Service::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownService(pub String);

impl fmt::Display for UnknownService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown service {:?} (expected one of users, events, bookings, payments, notifications, admin, web)",
            self.0
        )
    }
}

impl std::error::Error for UnknownService {}

impl FromStr for Service {
    type Err = UnknownService;
    fn from_str(s: &str) -> Result<Self, UnknownService> {
        Service::ALL.into_iter().find(|svc| svc.as_str() == s).ok_or_else(|| UnknownService(s.to_owned()))
    }
}

/// The base URL of every service, e.g. `http://127.0.0.1:9101` (scheme, host and port; no path).
///
/// Built from a function asked once per service, so the caller can read them from its settings:
/// `Upstreams::new(|s| settings.upstream_url(s))`. A trailing `/` is dropped.
#[derive(Clone, Debug)]
pub struct Upstreams {
    bases: [String; 7],
}

impl Upstreams {
    pub fn new(base: impl Fn(Service) -> String) -> Self {
        Upstreams { bases: Service::ALL.map(|s| base(s).trim_end_matches('/').to_owned()) }
    }

    /// The base URL of `service`.
    pub fn base(&self, service: Service) -> &str {
        &self.bases[service.index()]
    }

    /// Every service with its base URL.
    pub fn iter(&self) -> impl Iterator<Item = (Service, &str)> {
        Service::ALL.into_iter().map(|s| (s, self.base(s)))
    }

    /// Refuse base URLs the proxy could not call (not `http[s]://host[:port]`), naming the service, so a
    /// typo fails at start-up rather than as a 502 on every request.
    pub fn check(&self) -> Result<(), String> {
        for (service, base) in self.iter() {
            let uri: axum::http::Uri =
                base.parse().map_err(|e| format!("the {service} upstream {base:?} is not a URL: {e}"))?;
            let path_ok = uri.path().is_empty() || uri.path() == "/";
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            if !scheme_ok || uri.authority().is_none() || !path_ok || uri.query().is_some() {
                return Err(format!(
                    "the {service} upstream {base:?} must look like http://host:port or https://host:port"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Service::ALL {
            assert_eq!(s.as_str().parse::<Service>(), Ok(s));
        }
        assert!("gateway".parse::<Service>().is_err());
    }

    #[test]
    fn upstreams_are_per_service_and_checked() {
        let ups = Upstreams::new(|s| format!("http://127.0.0.1:{}/", 9100 + s as u16));
        assert_eq!(ups.base(Service::Users), "http://127.0.0.1:9100");
        assert_eq!(ups.base(Service::Web), "http://127.0.0.1:9106");
        assert_eq!(ups.check(), Ok(()));
        let bad =
            Upstreams::new(|s| if s == Service::Payments { "127.0.0.1:9103".into() } else { "http://a:1".into() });
        assert!(bad.check().unwrap_err().contains("payments"));
        let with_path = Upstreams::new(|_| "http://a:1/api".into());
        assert!(with_path.check().is_err());
    }
}
