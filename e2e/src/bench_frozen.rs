//! The bench part with a frozen site: handoffs of MultiCasskops that do not use the frozen site,
//! measured while it is frozen (and others that use it are busy failing on it), next to the same
//! run's baseline before the freeze.

use std::time::{Duration, Instant};

use anyhow::Context;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::audit::{self, median_p99};
use crate::benchmark::{
    BenchSizes, CONTROLLER_SA, create_all, is_ready, mc_api, mc_object, spawn_controller,
    wait_all_ready, wait_readyz,
};
use crate::faults::set_image;
use crate::{Env, EnvOptions};

/// What the frozen-site part measured.
#[derive(Clone, Debug, Default)]
pub struct FrozenFigures {
    /// Handoffs of the baseline (nothing frozen): count, p50, p99 (ms).
    pub baseline: (usize, f64, f64),
    /// Handoffs of MultiCasskops not using the frozen site, while it is frozen.
    pub frozen: (usize, f64, f64),
    /// MultiCasskops not using the frozen site that were not Ready within the bound.
    pub stalled: usize,
    /// MultiCasskops using the frozen site (their change rolls toward it during the freeze).
    pub users: usize,
    /// Ordering violations found in the audit log (must be 0).
    pub violations: usize,
}

/// The frozen site: the last of `sites`.
fn frozen_site(sites: &[String]) -> &str {
    sites.last().map_or("", String::as_str)
}

/// Creates `n` MultiCasskops named `prefix-NNN` over `sites`, one every `stagger`, waits until
/// they are Ready (or `bound` passes) and returns (handoffs in µs, violations, not Ready).
async fn staggered_rollouts(
    env: &Env,
    api: &Api<DynamicObject>,
    prefix: &str,
    n: usize,
    sites: &[String],
    stagger: Duration,
    bound: Duration,
) -> anyhow::Result<(Vec<i64>, usize, usize)> {
    let start_seq = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
    for name in &names {
        create_all(
            api,
            vec![mc_object(name, name, sites, "cassandra:3.11.9")],
            1,
        )
        .await?;
        tokio::time::sleep(stagger).await;
    }
    let deadline = Instant::now() + bound;
    let mut not_ready = names.len();
    while Instant::now() < deadline {
        not_ready = 0;
        for name in &names {
            let o = api.get(name).await?;
            let v: Value = serde_json::to_value(&o)?;
            if !is_ready(&v) {
                not_ready += 1;
            }
        }
        if not_ready == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let entries = env.sim.audit();
    let user = Env::sa_user(CONTROLLER_SA);
    let mut handoffs = Vec::new();
    let mut violations = 0;
    for name in &names {
        let r = audit::analyze(&entries, &[user.as_str()], name, start_seq);
        violations += r.violations.len();
        handoffs.extend(r.handoffs_us);
    }
    Ok((handoffs, violations, not_ready))
}

fn figures(handoffs: &[i64]) -> (usize, f64, f64) {
    let (p50, p99) = median_p99(handoffs).unwrap_or((0, 0));
    (handoffs.len(), p50 as f64 / 1000.0, p99 as f64 / 1000.0)
}

/// Baseline, then the same workload with the last site frozen while MultiCasskops using it
/// roll a change toward it.
pub async fn measure(sizes: &BenchSizes) -> anyhow::Result<FrozenFigures> {
    let sites: Vec<String> = (1..=sizes.sites + 1).map(|i| format!("site{i}")).collect();
    let healthy: Vec<String> = sites[..sites.len() - 1].to_vec();
    let frozen = frozen_site(&sites).to_string();
    let names: Vec<&str> = sites.iter().map(String::as_str).collect();
    let env = Env::start_with(
        &names,
        EnvOptions {
            casskop: sizes.handoff_casskop.clone(),
            controller_sa: CONTROLLER_SA.to_string(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let mut ctl = spawn_controller(&env, "frozen", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(20), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let mut f = FrozenFigures {
        users: sizes.frozen_users,
        ..FrozenFigures::default()
    };
    let users: Vec<String> = (0..sizes.frozen_users)
        .map(|i| format!("user-{i:03}"))
        .collect();
    create_all(
        &api,
        users
            .iter()
            .map(|n| mc_object(n, n, &sites, "cassandra:3.11.9"))
            .collect(),
        4,
    )
    .await?;
    wait_all_ready(
        &api,
        users.len(),
        Duration::from_millis(250),
        Duration::from_secs(300),
    )
    .await
    .context("MultiCasskops using every site Ready before the freeze")?;

    let bound = Duration::from_secs(300);
    let stagger = sizes.handoff_stagger;
    let n = sizes.handoff_crs;
    let (base, v0, _) =
        staggered_rollouts(&env, &api, "baseline", n, &healthy, stagger, bound).await?;
    f.baseline = figures(&base);

    env.sim.cluster(&frozen).faults().set_frozen(true);
    for u in &users {
        set_image(&env, u, "cassandra:3.11.10").await?;
    }
    let (during, v1, stalled) =
        staggered_rollouts(&env, &api, "bystander", n, &healthy, stagger, bound).await?;
    f.frozen = figures(&during);
    f.stalled = stalled;
    f.violations = v0 + v1;
    env.sim.cluster(&frozen).faults().set_frozen(false);
    ctl.kill();
    env.sim.shutdown().await;
    Ok(f)
}

/// The rows printed under the bench table.
pub fn rows(f: &FrozenFigures) -> String {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    format!(
        "frozen site ({} MultiCasskops using it rolling toward it): handoffs of the others \
         p50 / p99 {:.1} / {:.1} ms ({} handoffs) vs baseline {:.1} / {:.1} ms ({} handoffs): \
         {:.2}x / {:.2}x (goal within 2x); stalled federations {} (goal 0); violations {}\n",
        f.users,
        f.frozen.1,
        f.frozen.2,
        f.frozen.0,
        f.baseline.1,
        f.baseline.2,
        f.baseline.0,
        ratio(f.frozen.1, f.baseline.1),
        ratio(f.frozen.2, f.baseline.2),
        f.stalled,
        f.violations,
    )
}
