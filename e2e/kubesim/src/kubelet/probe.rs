//! Readiness and liveness probes as the kubelet's prober runs them: HTTP GET (2xx/3xx succeed) or TCP connect to the pod IP from the node, after initialDelaySeconds, every periodSeconds, with timeoutSeconds, successThreshold and failureThreshold.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::netns::{self, HttpOutcome};

#[derive(Debug, Clone)]
enum Action {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Unsupported(String),
}

/// One probe of one running container, with its counters.
#[derive(Debug)]
pub struct Prober {
    action: Action,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    next: Instant,
    successes: u32,
    failures: u32,
}

/// What one round of a probe decided.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Nothing changed enough to act on.
    Unchanged,
    /// Reached successThreshold.
    Healthy,
    /// One failure (the message for the Unhealthy Event); `threshold` when failureThreshold is
    /// reached.
    Failed { message: String, threshold: bool },
}

fn port(c: &Container, p: &IntOrString) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name} in container {}", c.name)),
    }
}

impl Prober {
    pub fn new(p: &Probe, c: &Container, started: Instant) -> Prober {
        let action = if let Some(h) = &p.http_get {
            match port(c, &h.port) {
                Ok(port) => Action::Http {
                    port,
                    path: h
                        .path
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "/".into()),
                },
                Err(e) => Action::Unsupported(e),
            }
        } else if let Some(t) = &p.tcp_socket {
            match port(c, &t.port) {
                Ok(port) => Action::Tcp { port },
                Err(e) => Action::Unsupported(e),
            }
        } else {
            Action::Unsupported(
                "only httpGet and tcpSocket probes are run by kubesim's kubelet".into(),
            )
        };
        let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
        Prober {
            action,
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
            next: started + secs(p.initial_delay_seconds, 0),
            successes: 0,
            failures: 0,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Runs the probe once against `ip`, from the node's network namespace.
    pub async fn run(&mut self, node_netns: &str, ip: Ipv4Addr) -> Verdict {
        self.next = Instant::now() + self.period;
        let action = self.action.clone();
        let timeout = self.timeout;
        let netns = node_netns.to_string();
        let result: Result<(), String> = tokio::task::spawn_blocking(move || match action {
            Action::Http { port, path } => {
                match netns::http_get(&netns, ip, port, &path, timeout) {
                    HttpOutcome::Status(code) if (200..400).contains(&code) => Ok(()),
                    HttpOutcome::Status(code) => {
                        Err(format!("HTTP probe failed with statuscode: {code}"))
                    }
                    HttpOutcome::Failed(e) => Err(e),
                }
            }
            Action::Tcp { port } => netns::in_netns(&netns, move || {
                std::net::TcpStream::connect_timeout(&(ip, port).into(), timeout)
                    .map(|_| ())
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => {
                            format!("dial tcp {ip}:{port}: connect: connection refused")
                        }
                        std::io::ErrorKind::TimedOut => {
                            format!("dial tcp {ip}:{port}: i/o timeout")
                        }
                        _ => format!("dial tcp {ip}:{port}: {e}"),
                    })
            })
            .map_err(|e| format!("{e:#}"))?,
            Action::Unsupported(e) => Err(e),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                if self.successes == self.success_threshold {
                    Verdict::Healthy
                } else {
                    Verdict::Unchanged
                }
            }
            Err(message) => {
                self.successes = 0;
                self.failures += 1;
                Verdict::Failed {
                    message,
                    threshold: self.failures >= self.failure_threshold,
                }
            }
        }
    }
}
