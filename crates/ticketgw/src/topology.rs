//! Where the other services are, when services run apart: their URLs, their databases and this
//! process's service credentials. Read from the environment, as a container orchestrator gives it:
//!
//! - `TICKETGW_<SERVICE>_URL`: base URL of a service [default: `http://<service>:8080`, its
//!   Kubernetes service name, so no registry is needed];
//! - `<SERVICE>_DATABASE_URL`: a service's own database [default: `DATABASE_URL`];
//! - `SERVICE_CLIENT_SECRET` (and `SERVICE_CLIENT_ID`, default: the process's first target in the
//!   order of [`Target::ALL`]): this process's credentials for service tokens;
//! - `SERVICE_CLIENTS`: on the users service, the registered clients, `id:secret,id:secret`;
//! - `TRUSTED_PROXIES`: networks whose `X-Forwarded-For` names the client (the gateway's and the web
//!   process's) [default: loopback and the private ranges, where a cluster's pods live].

use tg_gateway::{Service, Upstreams};
use tg_users::ServiceClient;

use crate::{
    config::Settings,
    targets::{Target, Targets},
};

pub struct Topology {
    pub upstreams: Upstreams,
    databases: Vec<(Target, Option<String>)>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub service_clients: Vec<ServiceClient>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Loopback and private networks: where the gateway and the web process call from in a cluster.
const PRIVATE_NETWORKS: &str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

impl Topology {
    pub fn from_env(targets: &Targets) -> anyhow::Result<Topology> {
        Topology::from_lookup(targets, |key| std::env::var(key).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(targets: &Targets, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Topology> {
        let upper = |name: &str| name.to_ascii_uppercase();
        let upstreams = Upstreams::new(|s| {
            env(&format!("TICKETGW_{}_URL", upper(s.as_str()))).unwrap_or_else(|| format!("http://{}:8080", s.as_str()))
        });
        upstreams.check().map_err(anyhow::Error::msg)?;
        let databases =
            Target::ALL.into_iter().map(|t| (t, env(&format!("{}_DATABASE_URL", upper(t.as_str()))))).collect();
        let service_clients = match env("SERVICE_CLIENTS") {
            Some(list) => parse_clients(&list)?,
            None => Vec::new(),
        };
        let proxies = env("TRUSTED_PROXIES").unwrap_or_else(|| PRIVATE_NETWORKS.to_owned());
        let trusted_proxies = proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|net| net.parse().map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {net:?} is not a network: {e}")))
            .collect::<anyhow::Result<_>>()?;
        Ok(Topology {
            trusted_proxies,
            upstreams,
            databases,
            client_id: env("SERVICE_CLIENT_ID").unwrap_or_else(|| targets.client_id().to_owned()),
            client_secret: env("SERVICE_CLIENT_SECRET"),
            service_clients,
        })
    }

    pub fn url(&self, service: Service) -> &str {
        self.upstreams.base(service)
    }

    /// The database of `target`'s service: its own URL if given, else the shared one.
    pub fn database_url(&self, target: Target, settings: &Settings) -> Option<String> {
        let own = self.databases.iter().find(|(t, _)| *t == target).and_then(|(_, url)| url.clone());
        own.or_else(|| settings.database_url.clone())
    }

    /// Refuse to start a microservice process whose settings cannot work across processes.
    pub fn check(&self, targets: &Targets, settings: &Settings) -> anyhow::Result<()> {
        let runs = |t| targets.runs(t);
        let services = [Target::Users, Target::Events, Target::Bookings, Target::Payments, Target::Notifications];
        let runs_service = services.into_iter().chain([Target::Admin]).any(runs);
        anyhow::ensure!(
            settings.public_url.is_some(),
            "PUBLIC_URL must be set when services run apart: it is the tokens' issuer, the same in every process"
        );
        anyhow::ensure!(
            !runs_service || settings.amqp_url.is_some(),
            "AMQP_URL must be set when services run apart: their domain events travel through RabbitMQ"
        );
        // Processes with the users service (users, admin) mint their own service tokens.
        let calls_others = [Target::Events, Target::Bookings, Target::Payments, Target::Notifications];
        let mints_own = runs(Target::Users) || runs(Target::Admin);
        anyhow::ensure!(
            !calls_others.into_iter().any(runs) || mints_own || self.client_secret.is_some(),
            "SERVICE_CLIENT_SECRET must be set: this process calls other services with a service token"
        );
        anyhow::ensure!(
            !runs(Target::Users) || !self.service_clients.is_empty(),
            "SERVICE_CLIENTS must list the service clients (id:secret,…) the users service grants tokens to"
        );
        anyhow::ensure!(
            !runs(Target::Payments) || settings.sandbox_webhook_secret.is_some() || settings.payments_sandbox == Some(false),
            "SANDBOX_WEBHOOK_SECRET must be set when payments run apart: every instance must verify the sandbox's webhooks"
        );
        Ok(())
    }
}

/// `id:secret,id:secret` → registered clients. Secrets shorter than 16 characters are refused.
fn parse_clients(list: &str) -> anyhow::Result<Vec<ServiceClient>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (id, secret) =
                pair.split_once(':').ok_or_else(|| anyhow::anyhow!("SERVICE_CLIENTS: {pair:?} is not id:secret"))?;
            anyhow::ensure!(!id.is_empty(), "SERVICE_CLIENTS: a client has no id");
            anyhow::ensure!(secret.len() >= 16, "SERVICE_CLIENTS: the secret of {id:?} is shorter than 16 characters");
            Ok(ServiceClient { id: id.to_owned(), secret: secret.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn topology(vars: &[(&str, &str)]) -> anyhow::Result<Topology> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Topology::from_lookup(&Targets::parse("payments").unwrap(), |k| vars.get(k).cloned())
    }

    #[test]
    fn urls_default_to_kubernetes_service_names() {
        let t = topology(&[("TICKETGW_BOOKINGS_URL", "http://127.0.0.1:9103/")]).unwrap();
        assert_eq!(t.url(Service::Bookings), "http://127.0.0.1:9103");
        assert_eq!(t.url(Service::Users), "http://users:8080");
        assert_eq!(t.client_id, "payments");
    }

    #[test]
    fn each_service_may_have_its_own_database() {
        let t = topology(&[("PAYMENTS_DATABASE_URL", "postgres://db/payments")]).unwrap();
        let shared = Settings { database_url: Some("postgres://db/shared".into()), ..Settings::default() };
        assert_eq!(t.database_url(Target::Payments, &shared).as_deref(), Some("postgres://db/payments"));
        assert_eq!(t.database_url(Target::Events, &shared).as_deref(), Some("postgres://db/shared"));
    }

    #[test]
    fn microservice_settings_fail_fast() {
        let targets = Targets::parse("payments").unwrap();
        let t = topology(&[]).unwrap();
        let mut s = Settings::default();
        assert!(t.check(&targets, &s).unwrap_err().to_string().contains("PUBLIC_URL"));
        s.public_url = Some("http://gw".into());
        assert!(t.check(&targets, &s).unwrap_err().to_string().contains("AMQP_URL"));
        s.amqp_url = Some("amqp://x".into());
        assert!(t.check(&targets, &s).unwrap_err().to_string().contains("SERVICE_CLIENT_SECRET"));
        let t = topology(&[("SERVICE_CLIENT_SECRET", "0123456789abcdef")]).unwrap();
        assert!(t.check(&targets, &s).unwrap_err().to_string().contains("SANDBOX_WEBHOOK_SECRET"));
        s.sandbox_webhook_secret = Some("whsec_x".into());
        t.check(&targets, &s).unwrap();
    }

    #[test]
    fn trusted_proxies_default_to_private_networks_and_parse() {
        let t = topology(&[]).unwrap();
        assert!(t.trusted_proxies.iter().any(|n| n.contains(&"10.42.0.7".parse::<std::net::IpAddr>().unwrap())));
        assert!(!t.trusted_proxies.iter().any(|n| n.contains(&"203.0.113.9".parse::<std::net::IpAddr>().unwrap())));
        let t = topology(&[("TRUSTED_PROXIES", "10.1.0.0/16")]).unwrap();
        assert_eq!(t.trusted_proxies.len(), 1);
        assert!(topology(&[("TRUSTED_PROXIES", "not-a-net")]).is_err());
    }

    #[test]
    fn service_clients_parse_and_weak_secrets_are_refused() {
        let c = parse_clients("payments:0123456789abcdef, web:fedcba9876543210").unwrap();
        assert_eq!(c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["payments", "web"]);
        assert!(parse_clients("payments:short").is_err());
        assert!(parse_clients("nocolon").is_err());
    }
}
