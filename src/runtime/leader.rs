//! Leader election through a coordination.k8s.io/v1 Lease, so two replicas never reconcile at once.
//!
//! The protocol is client-go's, with its default timings:
//! - a candidate judges a foreign lease expired when the record has not changed for
//!   `leaseDurationSeconds` on ITS OWN monotonic clock, counted from when it first saw that
//!   record (client-go's `observedTime`), never from the holder's wall-clock `renewTime`: clock
//!   skew between nodes cannot shorten a lease;
//! - the holder renews every retry period; each attempt (GET + PUT) has a deadline, and when no
//!   renew succeeded within the renew deadline, counted from the START of the last successful
//!   one, leadership is lost;
//! - the [`WriteFence`] is open only until that same instant, so the holder's writes stop at
//!   least `lease duration - renew deadline` (5 s by default) before a candidate may take over.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

use super::fence::WriteFence;
use crate::kube_error;

/// The Lease's name.
pub const LEASE_NAME: &str = "multi-casskop";

/// How long a lease lasts, how soon its holder must have renewed it, and how often to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a candidate waits, after it last saw the record change, before taking over.
    pub lease_duration: Duration,
    /// How long after the start of its last successful renew the holder stops writing and
    /// gives up; shorter than the lease duration.
    pub renew_deadline: Duration,
    /// How often the holder renews and a candidate retries.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Lease timings that cannot keep two leaders apart.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum LeaseTimingError {
    /// The renew deadline must end before a candidate can take over.
    #[error(
        "--leader-elect-renew-deadline ({renew_deadline:?}) must be shorter than --leader-elect-lease-duration ({lease_duration:?})"
    )]
    DeadlineNotShorterThanLease {
        renew_deadline: Duration,
        lease_duration: Duration,
    },
    /// At least one renew attempt must fit in the renew deadline.
    #[error(
        "--leader-elect-retry-period ({retry_period:?}) must be shorter than --leader-elect-renew-deadline ({renew_deadline:?})"
    )]
    RetryNotShorterThanDeadline {
        retry_period: Duration,
        renew_deadline: Duration,
    },
    /// The lease is stored in whole seconds.
    #[error("--leader-elect-lease-duration ({0:?}) must be a whole number of seconds, at least 1s")]
    LeaseNotWholeSeconds(Duration),
    /// A zero retry period would spin.
    #[error("--leader-elect-retry-period must be above zero")]
    ZeroRetry,
}

impl LeaseTiming {
    /// Checked timings: `retry period < renew deadline < lease duration`, lease in whole seconds.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, LeaseTimingError> {
        if lease_duration.subsec_nanos() != 0 || lease_duration.as_secs() == 0 {
            return Err(LeaseTimingError::LeaseNotWholeSeconds(lease_duration));
        }
        if renew_deadline >= lease_duration {
            return Err(LeaseTimingError::DeadlineNotShorterThanLease {
                renew_deadline,
                lease_duration,
            });
        }
        if retry_period.is_zero() {
            return Err(LeaseTimingError::ZeroRetry);
        }
        if retry_period >= renew_deadline {
            return Err(LeaseTimingError::RetryNotShorterThanDeadline {
                retry_period,
                renew_deadline,
            });
        }
        Ok(Self {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease object name ([`LEASE_NAME`]).
    pub name: String,
    /// Namespace of the Lease (the watch namespace).
    pub namespace: String,
    /// This replica's identity: pod name or host name plus a random suffix.
    pub identity: String,
    pub timing: LeaseTiming,
}

impl LeaseConfig {
    /// Lease [`LEASE_NAME`] in `namespace`.
    pub fn new(namespace: &str, identity: String, timing: LeaseTiming) -> Self {
        Self {
            name: LEASE_NAME.to_string(),
            namespace: namespace.to_string(),
            identity,
            timing,
        }
    }

    fn describe(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
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

/// The parts of a Lease record whose change proves its holder is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub lease_duration: Duration,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub transitions: i32,
}

impl LeaseRecord {
    pub fn from_spec(spec: &LeaseSpec) -> Self {
        let secs = spec.lease_duration_seconds.unwrap_or(0).max(0);
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration: Duration::from_secs(secs.unsigned_abs().into()),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// The record this replica last saw and when it first saw it (monotonic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub record: LeaseRecord,
    pub since: Instant,
}

/// What this replica knows after reading `spec` at `now` (pure): the time only restarts when
/// the record changed.
pub fn observe(prev: Option<Observed>, spec: Option<&LeaseSpec>, now: Instant) -> Option<Observed> {
    let record = LeaseRecord::from_spec(spec?);
    match prev {
        Some(prev) if prev.record == record => Some(prev),
        _ => Some(Observed { record, since: now }),
    }
}

/// What to do with the lease as it stands now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease object: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free, or unchanged for its whole duration since we first saw it: take it over.
    TakeOver,
    /// Someone else holds a lease we saw change less than its duration ago.
    Wait { holder: String },
}

/// Decide from what we observed (`None`: no Lease object) (pure).
pub fn decide(observed: Option<&Observed>, me: &str, now: Instant) -> LeaseDecision {
    let Some(o) = observed else {
        return LeaseDecision::Create;
    };
    if o.record.holder == me {
        return LeaseDecision::Renew;
    }
    if o.record.holder.is_empty() || o.since + o.record.lease_duration <= now {
        return LeaseDecision::TakeOver;
    }
    LeaseDecision::Wait {
        holder: o.record.holder.clone(),
    }
}

/// Until when the holder may write after a renew that started at `renew_started` (pure).
pub fn fence_deadline(renew_started: Instant, timing: &LeaseTiming) -> Instant {
    renew_started + timing.renew_deadline
}

/// Why leadership ended.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum LostLeadership {
    /// Another replica wrote itself into the Lease.
    #[error("{lease} is now held by {holder}")]
    TakenOver { lease: String, holder: String },
    /// No renew succeeded within the renew deadline.
    #[error(
        "{lease} not renewed within the renew deadline of {deadline:?} (last error: {last_error})"
    )]
    NotRenewed {
        lease: String,
        deadline: Duration,
        last_error: String,
    },
}

/// One attempt's outcome.
enum Attempt {
    /// We hold the lease now.
    Held,
    /// Someone else does.
    HeldBy(String),
}

/// Wraps one election attempt and its errors.
#[derive(thiserror::Error, Debug)]
enum AttemptError {
    /// The GET or the write of the Lease failed.
    #[error("{0}")]
    Api(String),
    /// The attempt had no answer within its deadline.
    #[error("no answer within {0:?}")]
    Deadline(Duration),
}

/// A Lease held by this replica.
pub struct Leadership {
    api: Api<Lease>,
    cfg: LeaseConfig,
    fence: WriteFence,
}

impl Leadership {
    /// Wait until this replica holds the lease, then open `fence`. `client` must NOT be fenced
    /// (it writes the Lease itself). Retries (with logs) on API errors forever.
    pub async fn acquire(client: Client, cfg: LeaseConfig, fence: WriteFence) -> Self {
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let mut observed = None;
        let mut last_holder = String::new();
        loop {
            let started = Instant::now();
            let attempt = tokio::time::timeout(
                cfg.timing.renew_deadline,
                try_acquire(&api, &cfg, &mut observed),
            )
            .await
            .unwrap_or(Err(AttemptError::Deadline(cfg.timing.renew_deadline)));
            match attempt {
                Ok(Attempt::Held) => {
                    fence.open_until(fence_deadline(started, &cfg.timing));
                    tracing::info!(identity = %cfg.identity, "became leader: holding {}", cfg.describe());
                    return Self { api, cfg, fence };
                }
                Ok(Attempt::HeldBy(holder)) if holder != last_holder => {
                    tracing::info!(identity = %cfg.identity, "standing by: {} is held by {holder}", cfg.describe());
                    last_holder = holder;
                }
                Ok(Attempt::HeldBy(_)) => {}
                Err(e) => tracing::warn!(
                    "leader election: cannot read or write {} in the local cluster: {e}",
                    cfg.describe()
                ),
            }
            tokio::time::sleep(cfg.timing.retry_period).await;
        }
    }

    /// Renew every retry period until the lease is lost; the fence is closed when this returns.
    pub async fn hold(&self) -> LostLeadership {
        let lost = self.renew_until_lost().await;
        self.fence.close();
        lost
    }

    async fn renew_until_lost(&self) -> LostLeadership {
        let timing = self.cfg.timing;
        let mut observed = None;
        let mut last_error = "none".to_string();
        loop {
            tokio::time::sleep(timing.retry_period).await;
            let started = Instant::now();
            let Some(deadline) = self.fence.deadline() else {
                return self.not_renewed(last_error);
            };
            if started >= deadline {
                return self.not_renewed(last_error);
            }
            // This attempt may only run until the fence would close anyway.
            let attempt =
                tokio::time::timeout_at(deadline, try_acquire(&self.api, &self.cfg, &mut observed))
                    .await
                    .unwrap_or(Err(AttemptError::Deadline(deadline - started)));
            match attempt {
                Ok(Attempt::Held) => self.fence.open_until(fence_deadline(started, &timing)),
                Ok(Attempt::HeldBy(holder)) => {
                    return LostLeadership::TakenOver {
                        lease: self.cfg.describe(),
                        holder,
                    };
                }
                Err(e) => {
                    tracing::warn!(
                        "leader election: renewing {} failed: {e}",
                        self.cfg.describe()
                    );
                    last_error = e.to_string();
                }
            }
        }
    }

    fn not_renewed(&self, last_error: String) -> LostLeadership {
        LostLeadership::NotRenewed {
            lease: self.cfg.describe(),
            deadline: self.cfg.timing.renew_deadline,
            last_error,
        }
    }

    /// Give the lease up (on shutdown) so a standby takes over without waiting for expiry.
    /// Closes the fence first; bounded by the renew deadline.
    pub async fn release(&self) {
        self.fence.close();
        let deadline = self.cfg.timing.renew_deadline;
        match tokio::time::timeout(deadline, self.try_release()).await {
            Ok(Ok(true)) => tracing::info!("released {}", self.cfg.describe()),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(
                "could not release {}: {}",
                self.cfg.describe(),
                kube_error::brief(&e)
            ),
            Err(_) => tracing::warn!(
                "could not release {}: no answer within {deadline:?}",
                self.cfg.describe()
            ),
        }
    }

    /// `Ok(true)` when the lease was ours and is now free.
    async fn try_release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        // `replace` carries the resourceVersion read: it never clears a newer holder.
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }
}

/// One attempt: read the Lease, then create, renew or take it over as [`decide`] says.
async fn try_acquire(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    observed: &mut Option<Observed>,
) -> Result<Attempt, AttemptError> {
    let api_error = |e: kube::Error| AttemptError::Api(kube_error::brief(&e));
    let current = api.get_opt(&cfg.name).await.map_err(api_error)?;
    *observed = observe(
        observed.take(),
        current.as_ref().and_then(|l| l.spec.as_ref()),
        Instant::now(),
    );
    let now = Timestamp::now();
    let result = match (
        decide(observed.as_ref(), &cfg.identity, Instant::now()),
        current,
    ) {
        (LeaseDecision::Wait { holder }, _) => return Ok(Attempt::HeldBy(holder)),
        (LeaseDecision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(cfg.identity.clone()),
                    lease_duration_seconds: Some(cfg.timing.lease_seconds()),
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
            spec.lease_duration_seconds = Some(cfg.timing.lease_seconds());
            spec.renew_time = Some(MicroTime(now));
            // `replace` carries the resourceVersion we read: a concurrent writer gets 409.
            api.replace(&cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        (_, None) => unreachable!("decide() returns Create when there is no Lease"),
    };
    match result {
        Ok(()) => Ok(Attempt::Held),
        // Lost a race with another candidate: report it as held by someone else.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldBy("another replica".into())),
        Err(e) => Err(api_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(
                Timestamp::from_second(renewed).expect("valid timestamp"),
            )),
            ..Default::default()
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn no_lease_means_create() {
        let now = Instant::now();
        let o = observe(None, None, now);
        assert_eq!(o, None);
        assert_eq!(decide(o.as_ref(), "me", now), LeaseDecision::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_when_unchanged_for_long() {
        let t0 = Instant::now();
        let o = observe(None, Some(&spec(Some("me"), 1, 15)), t0);
        assert_eq!(
            decide(o.as_ref(), "me", t0 + secs(100)),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn a_foreign_lease_expires_lease_duration_after_this_replica_first_saw_it() {
        let t0 = Instant::now();
        // The holder's renewTime is far in the past by wall clock: irrelevant, we just saw it.
        let stale_by_wall_clock = spec(Some("other"), 1, 15);
        let o = observe(None, Some(&stale_by_wall_clock), t0);
        let wait = LeaseDecision::Wait {
            holder: "other".into(),
        };
        assert_eq!(decide(o.as_ref(), "me", t0), wait);
        // Seen unchanged again and again: the clock does not restart.
        let o = observe(o, Some(&stale_by_wall_clock), t0 + secs(10));
        assert_eq!(o.as_ref().map(|o| o.since), Some(t0));
        assert_eq!(decide(o.as_ref(), "me", t0 + secs(14)), wait);
        assert_eq!(
            decide(o.as_ref(), "me", t0 + secs(15)),
            LeaseDecision::TakeOver
        );
    }

    #[test]
    fn a_renewal_seen_restarts_the_expiry_even_with_a_renew_time_from_the_future_or_past() {
        let t0 = Instant::now();
        let o = observe(None, Some(&spec(Some("other"), 1_000, 15)), t0);
        // The holder's clock runs backwards: the record still changed, so it is alive.
        let o = observe(o, Some(&spec(Some("other"), 10, 15)), t0 + secs(12));
        assert_eq!(o.as_ref().map(|o| o.since), Some(t0 + secs(12)));
        assert_eq!(
            decide(o.as_ref(), "me", t0 + secs(20)),
            LeaseDecision::Wait {
                holder: "other".into()
            }
        );
        assert_eq!(
            decide(o.as_ref(), "me", t0 + secs(27)),
            LeaseDecision::TakeOver
        );
    }

    #[test]
    fn the_lease_duration_is_the_records_not_ours() {
        let t0 = Instant::now();
        let o = observe(None, Some(&spec(Some("other"), 1, 60)), t0);
        assert!(matches!(
            decide(o.as_ref(), "me", t0 + secs(30)),
            LeaseDecision::Wait { .. }
        ));
        assert_eq!(
            decide(o.as_ref(), "me", t0 + secs(60)),
            LeaseDecision::TakeOver
        );
    }

    #[test]
    fn released_lease_is_taken_over_at_once() {
        let t0 = Instant::now();
        let o = observe(None, Some(&spec(None, 1, 1)), t0);
        assert_eq!(decide(o.as_ref(), "me", t0), LeaseDecision::TakeOver);
    }

    #[test]
    fn the_fence_closes_renew_deadline_after_the_renew_started_before_anyone_can_take_over() {
        let timing = LeaseTiming::default();
        let renew_started = Instant::now();
        // The renew lands (and is observed by a candidate) no earlier than it started.
        let observed_by_candidate = renew_started + Duration::from_millis(1);
        let o = observe(
            None,
            Some(&spec(Some("old"), 1, timing.lease_seconds())),
            observed_by_candidate,
        )
        .expect("observed");
        let fence = fence_deadline(renew_started, &timing);
        assert_eq!(fence, renew_started + secs(10));
        assert!(
            matches!(decide(Some(&o), "new", fence), LeaseDecision::Wait { .. }),
            "no takeover while the old leader may still write"
        );
        let takeover = o.since + o.record.lease_duration;
        assert_eq!(takeover - fence, secs(5) + Duration::from_millis(1));
    }

    #[test]
    fn timings_must_keep_retry_below_deadline_below_lease() {
        assert_eq!(
            LeaseTiming::new(secs(15), secs(10), secs(2)),
            Ok(LeaseTiming::default())
        );
        assert_eq!(
            LeaseTiming::new(secs(10), secs(10), secs(2))
                .unwrap_err()
                .to_string(),
            "--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)"
        );
        assert!(matches!(
            LeaseTiming::new(secs(15), secs(10), secs(10)),
            Err(LeaseTimingError::RetryNotShorterThanDeadline { .. })
        ));
        assert!(matches!(
            LeaseTiming::new(
                Duration::from_millis(1500),
                secs(1),
                Duration::from_millis(100)
            ),
            Err(LeaseTimingError::LeaseNotWholeSeconds(_))
        ));
        assert_eq!(
            LeaseTiming::new(secs(15), secs(10), Duration::ZERO),
            Err(LeaseTimingError::ZeroRetry)
        );
    }

    #[test]
    fn identities_of_two_processes_differ() {
        assert_ne!(identity(), identity());
    }
}
