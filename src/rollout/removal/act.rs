//! Act on the leaving site the removal plan names: scale a DC to 0, delete, or release, each a
//! write guarded by the resourceVersion it was computed from; a refused scale-down is tried
//! again when its retry is due.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::api::cassandra::cassandra_cluster_resource;
use crate::api::{FIELD_MANAGER, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL};
use crate::rollout::act::{Acted, Step as Done};
use crate::rollout::apply::{self, DeleteOutcome, WriteError};
use crate::rollout::context::{Context, Target};
use crate::rollout::events::EventType;
use crate::rollout::observe::Observation;
use crate::rollout::plan::AppliedMark;
use crate::rollout::status::reason as rollout_reason;

use super::entries::Report;
use super::names::{RELEASED_AT_ANNOTATION, RELEASED_BY_ANNOTATION, reason};
use super::observe::Leaving;
use super::plan::{SCALE_DOWN_MARK, Stage, Step};

/// Retry after a write found the object newer than our cache.
const STALE_RETRY: Duration = Duration::from_millis(500);

/// What one removal write needs.
struct Write<'a> {
    site: &'a str,
    client: Client,
    live: &'a DynamicObject,
}

impl Write<'_> {
    fn cc(&self) -> String {
        format!(
            "{}/{}",
            self.live.namespace().unwrap_or_default(),
            self.live.name_any()
        )
    }
    fn api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.live.namespace().unwrap_or_default(),
            &cassandra_cluster_resource(),
        )
    }
    fn error(&self, verb: &'static str, source: kube::Error) -> WriteError {
        WriteError::Site {
            site: self.site.to_string(),
            verb,
            namespace: self.live.namespace().unwrap_or_default(),
            name: self.live.name_any(),
            source,
        }
    }
}

fn acted(ctx: &Context, outcome: &'static str) -> Acted {
    Acted {
        outcome,
        requeue: Requeue::requeue(ctx.resync),
        failed: false,
        replan: false,
        wrote: None,
        handed_off_from: None,
    }
}

/// Carry out the removal's current stage (the caller checked there is one).
pub async fn act(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    leaving: &[Leaving],
    report: &mut Report,
) -> Done {
    let retry_key = |site: &str| format!("{}/{site}", target.key);
    for (site, stage, _) in &report.removal.stages {
        if !matches!(stage, Stage::Refused { .. }) {
            ctx.removal_retries.forget(&retry_key(site));
        }
    }
    let Some((site, stage)) = report.removal.current.clone() else {
        return Done::Acted(acted(ctx, "waiting"));
    };
    let step = match stage {
        Stage::Act(step) => step,
        Stage::Refused { dc, .. } => {
            match ctx.removal_retries.due(&retry_key(&site), Instant::now()) {
                Some(wait) => {
                    return Done::Acted(Acted {
                        requeue: Requeue::requeue(wait),
                        ..acted(ctx, "blocked")
                    });
                }
                None => Step::ScaleDown { dc },
            }
        }
        Stage::Busy(_) => return Done::Acted(acted(ctx, "waiting")),
        Stage::Stuck { .. } => {
            return Done::Acted(Acted {
                failed: true,
                ..acted(ctx, "blocked")
            });
        }
        Stage::Done => return Done::Acted(acted(ctx, "converged")),
    };
    let found = leaving.iter().find(|l| l.input.name == site);
    let (Some(client), Some(live)) = (
        found
            .and_then(|l| l.site.as_ref())
            .map(|s| s.client.clone()),
        found.and_then(|l| l.live.as_ref()),
    ) else {
        warn!(site = %site, "removal planned at a site without client or object");
        return Done::Acted(Acted {
            failed: true,
            ..acted(ctx, "error")
        });
    };
    let w = Write {
        site: &site,
        client,
        live,
    };
    let result = match &step {
        Step::ScaleDown { dc } => scale_down(target, ctx, obs, &w, dc).await,
        Step::Delete => delete(target, ctx, &w).await,
        Step::Release => release(target, ctx, report, &w).await,
    };
    Done::Acted(match result {
        Ok(a) => a,
        Err(e) => {
            warn!("{e}");
            let why = format!("site {site} left spec.override: {e}");
            report.failed = Some((site.clone(), why.clone()));
            let event_reason = match step {
                Step::Delete => rollout_reason::DELETE_FAILED,
                _ => rollout_reason::APPLY_FAILED,
            };
            ctx.publish(target.mc, EventType::Warning, event_reason, "Remove", why)
                .await;
            Acted {
                failed: true,
                ..acted(ctx, "site_write_error")
            }
        }
    })
}

/// `spec.topology` of `live` with DC `dc` at 0 nodes per rack.
fn scaled_topology(live: &DynamicObject, dc: &str) -> Value {
    let mut topology = live
        .data
        .pointer("/spec/topology")
        .cloned()
        .unwrap_or_else(|| json!({"dc": [{"name": dc}]}));
    if let Some(dcs) = topology.get_mut("dc").and_then(Value::as_array_mut) {
        for d in dcs.iter_mut() {
            if d.get("name").and_then(Value::as_str) == Some(dc) {
                d["nodesPerRacks"] = json!(0);
            }
        }
    }
    topology
}

/// Set DC `dc` to 0 nodes (a merge patch of `spec.topology` only, from the version we saw), and
/// record the write so the next reconcile waits for CassKop's answer.
async fn scale_down(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    w: &Write<'_>,
    dc: &str,
) -> Result<Acted, WriteError> {
    let patch = json!({
        "metadata": {"resourceVersion": w.live.resource_version()},
        "spec": {"topology": scaled_topology(w.live, dc)},
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let after = match w
        .api()
        .patch(&w.live.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(after) => after,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Ok(Acted {
                requeue: Requeue::requeue(STALE_RETRY),
                ..acted(ctx, "stale")
            });
        }
        Err(e) => return Err(w.error("patch", e)),
    };
    ctx.metrics.write(w.site, "scale_down");
    let mark = AppliedMark {
        hash: format!("{SCALE_DOWN_MARK}{dc}"),
        generation: after.metadata.generation.unwrap_or(0),
        dropped: Vec::new(),
    };
    let from = w.live.metadata.generation.unwrap_or(0);
    obs.new_marks.retain(|(s, _, _)| s != w.site);
    obs.new_marks.push((w.site.to_string(), mark, from));
    let note = format!(
        "Scaling DC {dc} of CassandraCluster {} in site {} to 0 (the site left spec.override; \
         it is deleted once CassKop has decommissioned its nodes)",
        w.cc(),
        w.site
    );
    info!(site = %w.site, "{note}");
    ctx.publish(
        target.mc,
        EventType::Normal,
        reason::SITE_SCALING_DOWN,
        "Remove",
        note,
    )
    .await;
    Ok(Acted {
        wrote: Some(w.site.to_string()),
        ..acted(ctx, "applied")
    })
}

/// Delete the leaving site's CassandraCluster (its DCs are at 0, or the MultiCasskop is being
/// deleted).
async fn delete(target: &Target<'_>, ctx: &Context, w: &Write<'_>) -> Result<Acted, WriteError> {
    let (namespace, name) = (w.live.namespace().unwrap_or_default(), w.live.name_any());
    let outcome = apply::delete_cluster(
        w.site,
        &w.client,
        &namespace,
        &name,
        &target.ns,
        &target.name,
    )
    .await?;
    ctx.metrics.write(w.site, "delete");
    if outcome == DeleteOutcome::Requested {
        let note = format!(
            "Deleting CassandraCluster {} in site {} (the site left spec.override)",
            w.cc(),
            w.site
        );
        info!(site = %w.site, "{note}");
        ctx.publish(
            target.mc,
            EventType::Normal,
            rollout_reason::DELETING,
            "Remove",
            note,
        )
        .await;
    }
    Ok(acted(ctx, "deleted"))
}

/// Release the leaving site's CassandraCluster: our owner labels removed, annotated with who
/// released it and when; nothing else changes.
async fn release(
    target: &Target<'_>,
    ctx: &Context,
    report: &mut Report,
    w: &Write<'_>,
) -> Result<Acted, WriteError> {
    let now = jiff::Timestamp::now().to_string();
    let by = target.key.clone();
    let patch = json!({
        "metadata": {
            "resourceVersion": w.live.resource_version(),
            "labels": {OWNER_NAME_LABEL: null, OWNER_NAMESPACE_LABEL: null, SITE_LABEL: null},
            "annotations": {RELEASED_BY_ANNOTATION: by, RELEASED_AT_ANNOTATION: now},
        },
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    match w
        .api()
        .patch(&w.live.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Ok(Acted {
                requeue: Requeue::requeue(STALE_RETRY),
                ..acted(ctx, "stale")
            });
        }
        Err(e) => return Err(w.error("patch", e)),
    }
    ctx.metrics.write(w.site, "release");
    let line = format!(
        "site {} left spec.override: CassandraCluster {} released at {now} (owner labels \
         removed, annotated {RELEASED_BY_ANNOTATION}={by}); deleteCassandraCluster is not true, \
         so nothing was deleted",
        w.site,
        w.cc()
    );
    info!(site = %w.site, "{line}");
    ctx.publish(
        target.mc,
        EventType::Normal,
        reason::SITE_RELEASED,
        "Remove",
        line.clone(),
    )
    .await;
    report.released.push((w.site.to_string(), line));
    // The object leaves our label-selected cache: no watch event of it comes back to us.
    Ok(Acted {
        requeue: Requeue::requeue(STALE_RETRY),
        ..acted(ctx, "site_released")
    })
}
