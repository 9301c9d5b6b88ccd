//! What a process runs: `--target` names a list of targets (`all`, `gateway`, `users`, `events`,
//! `bookings`, `payments`, `notifications`, `admin`, `web`), the way one Loki image runs any of its
//! components. `all` is the monolith; any other list runs those services as a microservice process
//! that reaches the others over HTTP and RabbitMQ (see `distributed.rs`).

use std::{collections::BTreeSet, fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Gateway,
    Users,
    Events,
    Bookings,
    Payments,
    Notifications,
    Admin,
    Web,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Gateway,
        Target::Users,
        Target::Events,
        Target::Bookings,
        Target::Payments,
        Target::Notifications,
        Target::Admin,
        Target::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Gateway => "gateway",
            Target::Users => "users",
            Target::Events => "events",
            Target::Bookings => "bookings",
            Target::Payments => "payments",
            Target::Notifications => "notifications",
            Target::Admin => "admin",
            Target::Web => "web",
        }
    }

    /// The gateway's name for the service this target serves (`None` for the gateway itself).
    pub fn service(self) -> Option<tg_gateway::Service> {
        use tg_gateway::Service as S;
        Some(match self {
            Target::Gateway => return None,
            Target::Users => S::Users,
            Target::Events => S::Events,
            Target::Bookings => S::Bookings,
            Target::Payments => S::Payments,
            Target::Notifications => S::Notifications,
            Target::Admin => S::Admin,
            Target::Web => S::Web,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Target::ALL.iter().map(|t| t.as_str()).collect();
            anyhow::anyhow!("unknown target {s:?}; available: all, {}", names.join(", "))
        })
    }
}

/// The targets of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Every service in one process, calling each other in process: today's monolith.
    All,
    /// These targets; every other service is reached at its URL.
    Some(BTreeSet<Target>),
}

impl Targets {
    /// Parse a comma-separated list (`all`, or target names).
    pub fn parse(list: &str) -> anyhow::Result<Targets> {
        let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        anyhow::ensure!(!names.is_empty(), "--target needs at least one target");
        if names.contains(&"all") {
            anyhow::ensure!(names.len() == 1, "`all` already runs every service; name it alone");
            return Ok(Targets::All);
        }
        Ok(Targets::Some(names.into_iter().map(str::parse).collect::<anyhow::Result<_>>()?))
    }

    pub fn runs(&self, target: Target) -> bool {
        match self {
            Targets::All => target != Target::Gateway,
            Targets::Some(set) => set.contains(&target),
        }
    }

    /// The default service client id of this process: its first target in the order of [`Target::ALL`]
    /// (not of the command line), for service tokens.
    pub fn client_id(&self) -> &'static str {
        match self {
            Targets::All => "all",
            Targets::Some(set) => set.iter().next().map_or("all", |t| t.as_str()),
        }
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::All => f.write_str("all"),
            Targets::Some(set) => {
                let names: Vec<&str> = set.iter().map(|t| t.as_str()).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(Targets::parse("all").unwrap(), Targets::All);
        let t = Targets::parse("bookings, payments").unwrap();
        assert!(t.runs(Target::Bookings) && t.runs(Target::Payments) && !t.runs(Target::Users));
        assert_eq!(t.to_string(), "bookings,payments");
        assert!(Targets::All.runs(Target::Web) && !Targets::All.runs(Target::Gateway));
    }

    #[test]
    fn bad_lists_are_refused_with_the_names() {
        let e = Targets::parse("users,bogus").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("notifications"), "{e}");
        assert!(Targets::parse("all,users").is_err());
        assert!(Targets::parse(" , ").is_err());
    }
}
