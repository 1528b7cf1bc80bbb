//! Leader election through a coordination.k8s.io/v1 Lease, so two replicas never reconcile at once.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::kube_error;

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease object name (`multi-casskop`).
    pub name: String,
    /// Namespace of the Lease (the watch namespace).
    pub namespace: String,
    /// This replica's identity: pod name or host name plus a random suffix.
    pub identity: String,
    /// How long a lease stays valid without renewal (15 s).
    pub lease_duration: Duration,
    /// How often the holder renews (5 s); also how often a candidate retries.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// The defaults: Lease `multi-casskop`, 15 s lease, renewed every 5 s.
    pub fn new(namespace: &str, identity: String) -> Self {
        Self {
            name: "multi-casskop".to_string(),
            namespace: namespace.to_string(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// This replica's identity: `$POD_NAME`, else `$HOSTNAME`, else /etc/hostname, plus a random
/// suffix so two processes on one host differ.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "multi-casskop".to_string());
    let suffix: u32 = rand::random();
    format!("{base}-{suffix:08x}")
}

/// What to do with the lease as it stands now (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease object: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over (bump transitions).
    TakeOver,
    /// Someone else holds a valid lease.
    Wait { holder: String },
}

/// Decide from the current spec (`None`: no Lease object).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> LeaseDecision {
    let Some(spec) = spec else {
        return LeaseDecision::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::TakeOver;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed {
        Some(t) if t + duration > now => LeaseDecision::Wait { holder },
        _ => LeaseDecision::TakeOver,
    }
}

/// A Lease held by this replica.
pub struct Leadership {
    api: Api<Lease>,
    cfg: LeaseConfig,
}

impl Leadership {
    /// Wait until this replica holds the lease. Retries (with logs) on API errors forever.
    pub async fn acquire(client: Client, cfg: LeaseConfig) -> Self {
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let mut last_holder = String::new();
        loop {
            match try_acquire(&api, &cfg).await {
                Ok(None) => {
                    tracing::info!(
                        identity = %cfg.identity,
                        "became leader: holding Lease {}/{}",
                        cfg.namespace,
                        cfg.name
                    );
                    return Self { api, cfg };
                }
                Ok(Some(holder)) => {
                    if holder != last_holder {
                        tracing::info!(
                            identity = %cfg.identity,
                            "standing by: Lease {}/{} is held by {holder}",
                            cfg.namespace,
                            cfg.name
                        );
                        last_holder = holder;
                    }
                }
                Err(e) => tracing::warn!(
                    "leader election: cannot read or write Lease {}/{} in the local cluster: {}",
                    cfg.namespace,
                    cfg.name,
                    kube_error::brief(&e)
                ),
            }
            tokio::time::sleep(retry_period(&cfg)).await;
        }
    }

    /// Renew until the lease is lost; returns the reason it was lost.
    pub async fn hold(&self) -> String {
        let mut last_renewed = std::time::Instant::now();
        loop {
            tokio::time::sleep(self.cfg.renew_every).await;
            match try_acquire(&self.api, &self.cfg).await {
                Ok(None) => last_renewed = std::time::Instant::now(),
                Ok(Some(holder)) => {
                    return format!(
                        "Lease {}/{} is now held by {holder}",
                        self.cfg.namespace, self.cfg.name
                    );
                }
                Err(e) => {
                    let e = kube_error::brief(&e);
                    tracing::warn!(
                        "leader election: renewing Lease {}/{} failed: {e}",
                        self.cfg.namespace,
                        self.cfg.name
                    );
                    if last_renewed.elapsed() >= self.cfg.lease_duration {
                        return format!(
                            "Lease {}/{} not renewed for {:?} (last error: {e})",
                            self.cfg.namespace, self.cfg.name, self.cfg.lease_duration
                        );
                    }
                }
            }
        }
    }

    /// Give the lease up (on shutdown) so a standby takes over without waiting for expiry.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released Lease {}/{}", self.cfg.namespace, self.cfg.name),
            Err(e) => tracing::warn!(
                "could not release Lease {}/{}: {}",
                self.cfg.namespace,
                self.cfg.name,
                kube_error::brief(&e)
            ),
        }
    }
}

fn retry_period(cfg: &LeaseConfig) -> Duration {
    // Candidates look a bit more often than the holder renews so hand-over after a crash takes
    // about one lease duration, not two.
    (cfg.renew_every / 2).max(Duration::from_millis(200))
}

/// One attempt. `Ok(None)`: we hold the lease now. `Ok(Some(holder))`: someone else does.
async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<Option<String>, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &cfg.identity,
        now,
    );
    let secs = i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(15);
    let result = match (decision, current) {
        (LeaseDecision::Wait { holder }, _) => return Ok(Some(holder)),
        (LeaseDecision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(cfg.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (decision, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if decision == LeaseDecision::TakeOver {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.acquire_time = Some(MicroTime(now));
                spec.holder_identity = Some(cfg.identity.clone());
            }
            spec.lease_duration_seconds = Some(secs);
            spec.renew_time = Some(MicroTime(now));
            // `replace` carries the resourceVersion we read: a concurrent writer gets 409.
            api.replace(&cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        (_, None) => unreachable!("decide() returns Create when there is no Lease"),
    };
    match result {
        Ok(()) => Ok(None),
        // Lost a race with another candidate: report it as held by someone else.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Some("another replica".to_string())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = Timestamp::now();
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
            ..Default::default()
        }
    }

    #[test]
    fn no_lease_means_create() {
        assert_eq!(decide(None, "me", Timestamp::now()), LeaseDecision::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_when_expired() {
        let s = spec(Some("me"), 100, 15);
        assert_eq!(
            decide(Some(&s), "me", Timestamp::now()),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn valid_foreign_lease_means_wait_and_expired_one_is_taken_over() {
        let now = Timestamp::now();
        let held = spec(Some("other"), 3, 15);
        assert_eq!(
            decide(Some(&held), "me", now),
            LeaseDecision::Wait {
                holder: "other".into()
            }
        );
        let expired = spec(Some("other"), 16, 15);
        assert_eq!(decide(Some(&expired), "me", now), LeaseDecision::TakeOver);
    }

    #[test]
    fn released_lease_is_taken_over_at_once() {
        let released = spec(None, 0, 1);
        assert_eq!(
            decide(Some(&released), "me", Timestamp::now()),
            LeaseDecision::TakeOver
        );
    }

    #[test]
    fn identities_of_two_processes_differ() {
        assert_ne!(identity(), identity());
    }
}
