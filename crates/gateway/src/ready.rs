//! The gateway is ready when every service it routes to is: `/readyz` asks each service's own
//! `/readyz`, all at once, through `tg_platform::http::finish_router`'s readiness checks.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tg_platform::http::ReadinessCheck;
use tokio::{sync::Mutex, task::JoinSet};

use crate::{proxy::Proxy, service::Service, service::Upstreams};

/// How long one service may take to say it is ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A round of probes answers every check that asks within this time after it, so the one-by-one
/// checks of a `/readyz` request share one concurrent round.
const ROUND_REUSED_FOR: Duration = Duration::from_secs(1);

type Round = Arc<HashMap<Service, Result<(), String>>>;

/// Asks every service's `/readyz` concurrently. As a [`ReadinessCheck`] it is one check,
/// `upstreams`, failing with the names of the services that are not ready; [`UpstreamsReady::checks`]
/// gives one check per service instead, so `/readyz` shows each service's state.
pub struct UpstreamsReady {
    upstreams: Arc<Upstreams>,
    proxy: Arc<Proxy>,
    last: Mutex<Option<(Instant, Round)>>,
}

impl UpstreamsReady {
    pub fn new(upstreams: Arc<Upstreams>, proxy: Arc<Proxy>) -> Arc<Self> {
        Arc::new(UpstreamsReady { upstreams, proxy, last: Mutex::new(None) })
    }

    /// One readiness check per service (named `users`, `events`, …, `web`), all answered by one
    /// concurrent round of probes.
    pub fn checks(self: &Arc<Self>) -> Vec<Arc<dyn ReadinessCheck>> {
        Service::ALL
            .into_iter()
            .map(|service| Arc::new(ServiceReady { service, probes: self.clone() }) as Arc<dyn ReadinessCheck>)
            .collect()
    }

    /// Every service's readiness: `Ok` when its `/readyz` answered 2xx within 2 s.
    pub async fn probe(&self) -> HashMap<Service, Result<(), String>> {
        (*self.round().await).clone()
    }

    async fn round(&self) -> Round {
        // Held during the round: a check arriving meanwhile waits for it instead of starting another.
        let mut last = self.last.lock().await;
        if let Some((at, round)) = &*last {
            if at.elapsed() < ROUND_REUSED_FOR {
                return round.clone();
            }
        }
        let mut calls = JoinSet::new();
        for (service, base) in self.upstreams.iter() {
            let proxy = self.proxy.clone();
            let url = format!("{base}/readyz");
            calls.spawn(async move {
                let state = match proxy.get(&url, PROBE_TIMEOUT, 64 * 1024).await {
                    Ok((status, _)) if status.is_success() => Ok(()),
                    Ok((status, _)) => Err(format!("answered {status}")),
                    Err(why) => Err(format!("unreachable: {why}")),
                };
                (service, state)
            });
        }
        let mut round = HashMap::new();
        while let Some(joined) = calls.join_next().await {
            if let Ok((service, state)) = joined {
                round.insert(service, state);
            }
        }
        let round = Arc::new(round);
        *last = Some((Instant::now(), round.clone()));
        round
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for UpstreamsReady {
    fn name(&self) -> &'static str {
        "upstreams"
    }
    async fn check(&self) -> Result<(), String> {
        let round = self.round().await;
        let failing: Vec<String> = Service::ALL
            .into_iter()
            .filter_map(|s| match round.get(&s) {
                Some(Ok(())) => None,
                Some(Err(why)) => Some(format!("{s}: {why}")),
                None => Some(format!("{s}: not probed")),
            })
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing.join("; "))
        }
    }
}

struct ServiceReady {
    service: Service,
    probes: Arc<UpstreamsReady>,
}

#[async_trait::async_trait]
impl ReadinessCheck for ServiceReady {
    fn name(&self) -> &'static str {
        self.service.as_str()
    }
    async fn check(&self) -> Result<(), String> {
        self.probes.round().await.get(&self.service).cloned().unwrap_or_else(|| Err("not probed".into()))
    }
}
