//! The rollout's API calls: server-side apply or delete of a site's CassandraCluster, the
//! MultiCasskop finalizer and status writes. Thin I/O only; every decision is the planner's.

use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::api::owner;
use crate::api::{
    FIELD_MANAGER, FINALIZER, FROM_GENERATION_ANNOTATION, MultiCasskop, MultiCasskopStatus,
    cassandra::cassandra_cluster_resource,
};
use crate::kube_error::brief;
use crate::merge::DesiredCluster;
use crate::rollout::create::{self, Created};

/// A failed write, naming the cluster and the object.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A request to a site's API server failed.
    #[error("{verb} CassandraCluster {namespace}/{name} in site {site} failed: {}", brief(.source))]
    Site {
        site: String,
        verb: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The object at the site is not ours (labels changed under us): refused.
    #[error("refusing to delete CassandraCluster {namespace}/{name} in site {site}: {why}")]
    NotOurs {
        site: String,
        namespace: String,
        name: String,
        why: String,
    },
    /// A write to the MultiCasskop in the local cluster failed.
    #[error("{what} of MultiCasskop {namespace}/{name} failed: {}", brief(.source))]
    Local {
        what: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl WriteError {
    /// The field paths the server named as the cause (`details.causes[].field` of its Status),
    /// e.g. `spec.nodesPerRacks` for a value its CRD's schema refused.
    pub fn causes(&self) -> Vec<String> {
        match self {
            WriteError::Site {
                source: kube::Error::Api(s),
                ..
            } => s
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .filter(|c| !c.field.is_empty())
                .map(|c| c.field.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The underlying API status code, if the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            WriteError::Site { source, .. } | WriteError::Local { source, .. } => match source {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            WriteError::NotOurs { .. } => None,
        }
    }
}

/// What a server-side apply did.
#[derive(Clone, Debug)]
pub struct ApplyOutcome {
    /// The object did not exist before.
    pub created: bool,
    /// The write changed the object (resourceVersion moved).
    pub changed: bool,
    /// The write changed `spec` or `status.seedlist` (CassKop will react with a status write).
    pub spec_changed: bool,
    /// `metadata.generation` before the write (`None`: created).
    pub generation_before: Option<i64>,
    /// `metadata.generation` returned by the write.
    pub generation: i64,
    /// `metadata.resourceVersion` returned by the write.
    pub resource_version: String,
    /// The object as the write returned it.
    pub after: DynamicObject,
}

/// What [`apply_cluster`] ended with, when the site answered.
#[derive(Clone, Debug)]
pub enum ApplyResult {
    /// The write went through.
    Applied(Box<ApplyOutcome>),
    /// A create was planned, but an object of that name exists that our cache does not hold
    /// (not carrying our owner labels, or the cache is behind): nothing was written.
    Exists(Box<DynamicObject>),
    /// The object changed since the version our write was computed against (409): nothing was
    /// written; the cache will show the newer version and the next reconcile plans again.
    Stale,
}

fn cluster_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &cassandra_cluster_resource())
}

/// Write the desired CassandraCluster at `site` with our field manager: create it, or
/// server-side apply it over our own, forcing ownership of the fields we set (fields others own
/// and we do not set are left alone).
///
/// `base` is the live object the plan was made from (the site cache's copy), `None` to create.
/// An update carries `base`'s resourceVersion as a precondition and records `base`'s generation
/// in [`FROM_GENERATION_ANNOTATION`], so what the write did can be told from the object alone
/// later ([`recover_mark`]). A create is a POST (see [`create`]): an object of that name our
/// cache does not hold (not carrying our owner labels) makes it fail with 409, and is never
/// taken over.
pub async fn apply_cluster(
    site: &str,
    client: &Client,
    desired: &DesiredCluster,
    base: Option<&DynamicObject>,
) -> Result<ApplyResult, WriteError> {
    let api = cluster_api(client, &desired.namespace);
    let err = |verb: &'static str| {
        move |source| WriteError::Site {
            site: site.to_string(),
            verb,
            namespace: desired.namespace.clone(),
            name: desired.name.clone(),
            source,
        }
    };
    let mut object = desired.object.clone();
    let from_generation = base.map_or(0, |b| b.metadata.generation.unwrap_or(0));
    object["metadata"]["annotations"][FROM_GENERATION_ANNOTATION] =
        json!(from_generation.to_string());
    let Some(b) = base else {
        return match create::create(&api, &desired.name, object).await {
            Ok(Created::Done(created)) => Ok(ApplyResult::Applied(Box::new(outcome(
                None, None, *created,
            )))),
            Ok(Created::Exists(found)) => Ok(ApplyResult::Exists(found)),
            Ok(Created::Vanished) => Ok(ApplyResult::Stale),
            Err((verb, e)) => Err(err(verb)(e)),
        };
    };
    let rv = match create::own_before_apply(&api, b).await {
        Ok(Some(rv)) => rv,
        Ok(None) => return Ok(ApplyResult::Stale),
        Err((verb, e)) => return Err(err(verb)(e)),
    };
    object["metadata"]["resourceVersion"] = json!(rv);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut result = api
        .patch(&desired.name, &params, &Patch::Apply(&object))
        .await;
    // An apply carrying fields the site's CRD does not declare is refused as a whole, where a
    // create would have pruned them: apply once more without them, so the site stores what it
    // can, as it did at the create; the caller finds them missing from what comes back and
    // reports them as dropped.
    if let Err(kube::Error::Api(s)) = &result {
        let undeclared = crate::rollout::plan::undeclared_fields(&s.message, &object);
        if !undeclared.is_empty() {
            let stripped = crate::rollout::plan::without_fields(&object, &undeclared);
            result = api
                .patch(&desired.name, &params, &Patch::Apply(&stripped))
                .await;
        }
    }
    let after = match result {
        Ok(after) => after,
        // Precondition failed: someone wrote since `base`.
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(ApplyResult::Stale),
        Err(e) => return Err(err("apply")(e)),
    };
    Ok(ApplyResult::Applied(Box::new(outcome(
        base,
        Some(&rv),
        after,
    ))))
}

/// What a write from `base` (`None`: a create) at version `rv_before` that returned `after` did.
fn outcome(
    base: Option<&DynamicObject>,
    rv_before: Option<&str>,
    after: DynamicObject,
) -> ApplyOutcome {
    let resource_version = after.resource_version().unwrap_or_default();
    ApplyOutcome {
        created: base.is_none(),
        changed: rv_before != Some(resource_version.as_str()),
        spec_changed: crate::rollout::plan::casskop_will_react(base, &after),
        generation_before: base.map(|o| o.metadata.generation.unwrap_or(0)),
        generation: after.metadata.generation.unwrap_or(0),
        resource_version,
        after,
    }
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The DELETE was accepted (the object may linger while CassKop's finalizers run).
    Requested,
    /// It was already gone.
    AlreadyGone,
}

/// Delete our CassandraCluster `namespace/name` at `site`. Checks our owner labels on a fresh
/// read and deletes with a UID precondition, so an object someone else created meanwhile under
/// the same name is never deleted.
pub async fn delete_cluster(
    site: &str,
    client: &Client,
    namespace: &str,
    name: &str,
    owner_ns: &str,
    owner_name: &str,
) -> Result<DeleteOutcome, WriteError> {
    let api = cluster_api(client, namespace);
    let err = |verb: &'static str| {
        move |source| WriteError::Site {
            site: site.to_string(),
            verb,
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        }
    };
    let Some(live) = api.get_opt(name).await.map_err(err("get"))? else {
        return Ok(DeleteOutcome::AlreadyGone);
    };
    if !owner::is_owned_by(&live, owner_ns, owner_name) {
        return Err(WriteError::NotOurs {
            site: site.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            why: format!(
                "it does not carry the owner labels of MultiCasskop {owner_ns}/{owner_name}"
            ),
        });
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: live.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(DeleteOutcome::Requested),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(DeleteOutcome::AlreadyGone),
        Err(e) => Err(err("delete")(e)),
    }
}

/// The finalizer list with ours added or removed; `None` when nothing changes.
pub fn finalizers_with(current: &[String], want: bool) -> Option<Vec<String>> {
    let has = current.iter().any(|f| f == FINALIZER);
    match (has, want) {
        (false, true) => {
            let mut v = current.to_vec();
            v.push(FINALIZER.to_string());
            Some(v)
        }
        (true, false) => Some(
            current
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
        ),
        _ => None,
    }
}

/// Add (`want`) or remove our finalizer on the MultiCasskop. A JSON patch with a `test` of the
/// list we read, so a concurrent change to the finalizers makes it fail (and retry) instead of
/// dropping someone else's finalizer. Returns the new resourceVersion when a write happened.
pub async fn set_finalizer(
    api: &Api<MultiCasskop>,
    mc: &MultiCasskop,
    want: bool,
) -> Result<Option<String>, WriteError> {
    let current = mc.finalizers().to_vec();
    let Some(next) = finalizers_with(&current, want) else {
        return Ok(None);
    };
    let ops = if mc.metadata.finalizers.is_none() {
        json!([{ "op": "add", "path": "/metadata/finalizers", "value": next }])
    } else {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "replace", "path": "/metadata/finalizers", "value": next }
        ])
    };
    let patch: json_patch::Patch =
        serde_json::from_value(ops).expect("finalizer JSON patch is well-formed");
    let written = api
        .patch(
            &mc.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .map_err(|source| WriteError::Local {
            what: if want {
                "adding the finalizer"
            } else {
                "removing the finalizer"
            },
            namespace: mc.namespace().unwrap_or_default(),
            name: mc.name_any(),
            source,
        })?;
    Ok(written.resource_version())
}

/// Write the status subresource with server-side apply (our field manager owns all of it, so
/// fields we stop reporting disappear). Returns the new resourceVersion.
pub async fn write_status(
    api: &Api<MultiCasskop>,
    mc: &MultiCasskop,
    status: &MultiCasskopStatus,
) -> Result<Option<String>, WriteError> {
    let body: Value = json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": { "name": mc.name_any() },
        "status": status,
    });
    let written = api
        .patch_status(
            &mc.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| WriteError::Local {
            what: "status update",
            namespace: mc.namespace().unwrap_or_default(),
            name: mc.name_any(),
            source,
        })?;
    Ok(written.resource_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_added_once_and_removed_without_touching_others() {
        let others = vec!["other.io/keep".to_string()];
        let added = finalizers_with(&others, true).unwrap();
        assert_eq!(
            added,
            vec!["other.io/keep".to_string(), FINALIZER.to_string()]
        );
        assert_eq!(finalizers_with(&added, true), None);
        assert_eq!(finalizers_with(&added, false).unwrap(), others);
        assert_eq!(finalizers_with(&others, false), None);
    }
}
