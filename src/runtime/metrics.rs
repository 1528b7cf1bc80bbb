//! Prometheus metrics of the controller, served in text format at `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteResultLabels {
    site: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    site: String,
    verb: String,
}

/// Every metric the controller exports, plus the registry that renders them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    handoffs: Counter,
    site_reachable: Family<SiteLabels, Gauge>,
    writes: Family<WriteLabels, Counter>,
    token_expiry: Family<SiteLabels, Gauge>,
    token_renewals: Family<SiteResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `multicasskop_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("multicasskop");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciliations of MultiCasskops, by result (applied, deleted, waiting, converged, blocked, invalid, error)",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation of a MultiCasskop",
            reconcile_duration.clone(),
        );
        let handoffs = Counter::default();
        registry.register(
            "site_handoffs",
            "Rollouts moved on to a later site after the previous one became Running/Done",
            handoffs.clone(),
        );
        let site_reachable = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "site_reachable",
            "1 when the site's credentials load and its CassandraCluster watch is healthy, else 0",
            site_reachable.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "site_writes",
            "Writes to CassandraClusters, by site and verb (apply, delete)",
            writes.clone(),
        );
        let token_expiry = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "site_token_expiry_timestamp_seconds",
            "Unix time at which the remote site's bound token expires (renewed when a third of its lifetime is left)",
            token_expiry.clone(),
        );
        let token_renewals = Family::<SiteResultLabels, Counter>::default();
        registry.register(
            "site_token_renewals",
            "Renewals of remote sites' bound tokens, by site and result (success, failure)",
            token_renewals.clone(),
        );
        Self {
            registry,
            token_expiry,
            token_renewals,
            reconciles,
            reconcile_duration,
            handoffs,
            site_reachable,
            writes,
        }
    }

    /// Count one reconciliation with its result and duration.
    pub fn reconciled(&self, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Count a rollout moving on to a later site.
    pub fn handoff(&self) {
        self.handoffs.inc();
    }

    /// Record whether a site is reachable right now.
    pub fn set_site_reachable(&self, site: &str, reachable: bool) {
        self.site_reachable
            .get_or_create(&SiteLabels {
                site: site.to_string(),
            })
            .set(i64::from(reachable));
    }

    /// Count one write to a site's CassandraCluster.
    pub fn write(&self, site: &str, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                site: site.to_string(),
                verb: verb.to_string(),
            })
            .inc();
    }

    /// Record when `site`'s token expires (Unix seconds).
    pub fn set_token_expiry(&self, site: &str, expires: i64) {
        self.token_expiry
            .get_or_create(&SiteLabels {
                site: site.to_string(),
            })
            .set(expires);
    }

    /// Start counting renewals of `site`'s token at 0 for every result, so the first failure
    /// is an increase Prometheus sees (a series born at 1 shows none).
    pub fn token_renewals_tracked(&self, site: &str) {
        for result in ["success", "failure"] {
            let _ = self.token_renewals.get_or_create(&SiteResultLabels {
                site: site.to_string(),
                result: result.to_string(),
            });
        }
    }

    /// Count one renewal of `site`'s token with its result (`success`, `failure`).
    pub fn token_renewal(&self, site: &str, result: &str) {
        self.token_renewals
            .get_or_create(&SiteResultLabels {
                site: site.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counters_with_their_labels() {
        let m = Metrics::new();
        m.reconciled("applied", Duration::from_millis(3));
        m.write("k8s-cluster2", "apply");
        m.set_site_reachable("k8s-cluster3", false);
        m.handoff();
        m.set_token_expiry("k8s-cluster2", 1_700_000_000);
        m.token_renewal("k8s-cluster2", "failure");
        let text = m.render();
        assert!(
            text.contains(r#"multicasskop_site_token_expiry_timestamp_seconds{site="k8s-cluster2"} 1700000000"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"multicasskop_site_token_renewals_total{site="k8s-cluster2",result="failure"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"multicasskop_reconciles_total{result="applied"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"multicasskop_site_writes_total{site="k8s-cluster2",verb="apply"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"multicasskop_site_reachable{site="k8s-cluster3"} 0"#),
            "{text}"
        );
        assert!(
            text.contains("multicasskop_site_handoffs_total 1"),
            "{text}"
        );
        assert!(
            text.contains("multicasskop_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }
}
