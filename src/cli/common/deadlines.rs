//! The deadline flags: every request's (all commands that reach clusters) and the controller's
//! bounds on a reconcile, a quiet site watch and liveness.

use std::time::Duration;

use clap::Args;

use crate::runtime::liveness::DEFAULT_LIVENESS_TIMEOUT;
use crate::sites::deadlines::{self, Deadlines};

/// Deadlines of every request to the local cluster and to the sites.
#[derive(Args, Debug, Clone, Copy)]
pub struct DeadlineArgs {
    /// Longest TCP connect plus TLS handshake with an API server.
    /// Examples: `--connect-timeout 5s`, `--connect-timeout 500ms`.
    #[arg(long = "connect-timeout", value_name = "DURATION", default_value = "5s",
          value_parser = crate::duration::parse_or_seconds)]
    pub connect_timeout: Duration,
    /// Longest wait for the response headers of any request to an API server (watches: for
    /// their start). A site that does not answer within it is reported unreachable.
    /// Example: `--request-timeout 10s`.
    #[arg(long = "request-timeout", value_name = "DURATION", default_value = "10s",
          value_parser = crate::duration::parse_or_seconds)]
    pub request_timeout: Duration,
}

impl Default for DeadlineArgs {
    fn default() -> Self {
        let d = Deadlines::default();
        Self {
            connect_timeout: d.connect,
            request_timeout: d.request,
        }
    }
}

impl DeadlineArgs {
    /// Make these the deadlines of every client built from now on.
    pub fn install(&self) {
        let d = Deadlines::default();
        self.install_with_progress(d.quiet_watch, d.keepalive);
    }

    /// As [`Self::install`], with the controller's `--site-probe-period` and
    /// `--site-keepalive`.
    pub fn install_with_progress(&self, quiet_watch: Duration, keepalive: Option<Duration>) {
        deadlines::install(Deadlines {
            connect: self.connect_timeout,
            request: self.request_timeout,
            quiet_watch,
            keepalive,
        });
    }
}

/// The controller's bounds: a reconcile, a quiet site watch, liveness.
#[derive(Args, Debug, Clone, Copy)]
pub struct ProgressArgs {
    /// Longest one reconcile of a MultiCasskop may take; past it, it is abandoned and retried
    /// with backoff, so a site that hangs never holds one of the --concurrency slots.
    /// Example: `--reconcile-timeout 60s`.
    #[arg(long = "reconcile-timeout", value_name = "DURATION", default_value = "60s",
          value_parser = crate::duration::parse_or_seconds)]
    pub reconcile_timeout: Duration,
    /// A site's CassandraCluster watch that delivers nothing for this long checks that the site
    /// still answers (GET /version under --request-timeout); a site that does not is reported
    /// on every MultiCasskop using it and its watch restarted. A site answering over HTTP/2
    /// with --site-keepalive on is checked once per watch, then by PING frames only.
    /// Example: `--site-probe-period 10s`.
    #[arg(long = "site-probe-period", value_name = "DURATION", default_value = "10s",
          value_parser = crate::duration::parse_or_seconds)]
    pub site_probe_period: Duration,
    /// API servers are offered HTTP/2 (TLS ALPN), and an HTTP/2 connection that received
    /// nothing for this long is sent a PING; one unanswered within --request-timeout closes
    /// the connection and fails its watches, so a frozen site is reported without API
    /// requests. `0`: HTTP/1.1 only, and quiet site watches are checked by GET /version every
    /// --site-probe-period. Example: `--site-keepalive 10s`.
    #[arg(long = "site-keepalive", value_name = "DURATION", default_value = "10s",
          value_parser = crate::duration::parse_or_seconds)]
    pub site_keepalive: Duration,
    /// /healthz fails when a reconcile has run longer than this, or when the local
    /// MultiCasskop watch has delivered nothing and the local API server has not answered for
    /// this long: the process is wedged and a restart is the way out. Keep it above
    /// --reconcile-timeout. Example: `--liveness-timeout 2m`.
    #[arg(long = "liveness-timeout", value_name = "DURATION", default_value = "2m",
          value_parser = crate::duration::parse_or_seconds)]
    pub liveness_timeout: Duration,
}

impl ProgressArgs {
    /// `--site-keepalive`, `None` when off (`0`).
    pub fn keepalive(&self) -> Option<Duration> {
        Some(self.site_keepalive).filter(|d| !d.is_zero())
    }
}

impl Default for ProgressArgs {
    fn default() -> Self {
        Self {
            reconcile_timeout: Duration::from_secs(60),
            site_probe_period: Deadlines::default().quiet_watch,
            site_keepalive: deadlines::DEFAULT_KEEPALIVE,
            liveness_timeout: DEFAULT_LIVENESS_TIMEOUT,
        }
    }
}
