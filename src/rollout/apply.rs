//! Carries out one planned action: server-side apply or delete of a site's CassandraCluster, the
//! MultiCasskop finalizer and status writes. Thin I/O only; every decision is the planner's.

use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::api::{
    FIELD_MANAGER, FINALIZER, MultiCasskop, MultiCasskopStatus, OWNER_NAME_LABEL,
    OWNER_NAMESPACE_LABEL, SPEC_HASH_ANNOTATION, cassandra::cassandra_cluster_resource,
};
use crate::merge::DesiredCluster;
use crate::rollout::plan::AppliedMark;

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

/// A kube error in one line: the API server's message and code, not the whole Status dump.
pub fn brief(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            format!("{} ({} {})", s.message, s.code, s.reason)
        }
        other => {
            // Transport errors hide the cause (connection refused, certificate) in the chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text = format!("{text}: {more}");
                }
                source = s.source();
            }
            text
        }
    }
}

impl WriteError {
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

fn cluster_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &cassandra_cluster_resource())
}

/// Server-side apply the desired CassandraCluster at `site` with our field manager, forcing
/// ownership of the fields we set (fields others own and we do not set are left alone).
/// The object is read right before the write so `changed` is exact, not a cache guess.
pub async fn apply_cluster(
    site: &str,
    client: &Client,
    desired: &DesiredCluster,
) -> Result<ApplyOutcome, WriteError> {
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
    let before = api.get_opt(&desired.name).await.map_err(err("get"))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let after = api
        .patch(&desired.name, &params, &Patch::Apply(&desired.object))
        .await
        .map_err(err("apply"))?;
    let rv_before = before.as_ref().and_then(|o| o.resource_version());
    let resource_version = after.resource_version().unwrap_or_default();
    Ok(ApplyOutcome {
        created: before.is_none(),
        changed: rv_before.as_deref() != Some(resource_version.as_str()),
        spec_changed: crate::rollout::plan::casskop_will_react(before.as_ref(), &after),
        generation_before: before.as_ref().and_then(|o| o.metadata.generation),
        generation: after.metadata.generation.unwrap_or(0),
        resource_version,
        after,
    })
}

/// The applied mark for a write of ours that landed but whose record in the status was lost
/// (the controller stopped between the write and the status update): the live object carries
/// our desired hash, yet the status has no mark for it, so re-applying changes nothing and the
/// mark would never be recorded. `managedFields` tell whether someone (CassKop) wrote after our
/// last apply: then its status counts; otherwise (or when the times cannot tell) wait for its
/// next write. `None` when the live object does not carry `desired_hash` or a mark exists.
pub fn recover_mark(
    live: &DynamicObject,
    desired_hash: &str,
    previous: Option<&AppliedMark>,
) -> Option<AppliedMark> {
    if previous.is_some_and(|p| p.hash == desired_hash) {
        return None;
    }
    let carried = live
        .annotations()
        .get(SPEC_HASH_ANNOTATION)
        .map(String::as_str);
    if carried != Some(desired_hash) {
        return None;
    }
    let fields = live.managed_fields();
    let ours = fields
        .iter()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max()?;
    let others = fields
        .iter()
        .filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max();
    let generation = live.metadata.generation.unwrap_or(0);
    Some(AppliedMark {
        hash: desired_hash.to_string(),
        generation: match others {
            Some(t) if t > ours => generation - 1,
            _ => generation,
        },
    })
}

/// True when `obj` carries the owner labels of MultiCasskop `owner_ns/owner_name`.
pub fn is_owned_by(obj: &DynamicObject, owner_ns: &str, owner_name: &str) -> bool {
    let labels = obj.labels();
    labels.get(OWNER_NAME_LABEL).map(String::as_str) == Some(owner_name)
        && labels.get(OWNER_NAMESPACE_LABEL).map(String::as_str) == Some(owner_ns)
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
    if !is_owned_by(&live, owner_ns, owner_name) {
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

    fn live_with(hash: &str, generation: i64, times: &[(&str, &str)]) -> DynamicObject {
        let mut obj = DynamicObject::new("cc", &cassandra_cluster_resource()).within("ns");
        obj.annotations_mut()
            .insert(SPEC_HASH_ANNOTATION.into(), hash.into());
        obj.metadata.generation = Some(generation);
        obj.metadata.managed_fields = Some(
            times
                .iter()
                .map(|(manager, time)| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                        manager: Some(manager.to_string()),
                        time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            time.parse().unwrap(),
                        )),
                        ..Default::default()
                    }
                })
                .collect(),
        );
        obj
    }

    #[test]
    fn lost_mark_recovered_as_fresh_when_casskop_wrote_after_us() {
        let live = live_with(
            "h2",
            7,
            &[
                (FIELD_MANAGER, "2026-01-01T10:00:00Z"),
                ("casskop", "2026-01-01T10:00:05Z"),
            ],
        );
        let old = AppliedMark {
            hash: "h1".into(),
            generation: 3,
        };
        assert_eq!(
            recover_mark(&live, "h2", Some(&old)),
            Some(AppliedMark {
                hash: "h2".into(),
                generation: 6
            })
        );
    }

    #[test]
    fn lost_mark_waits_for_casskop_when_it_has_not_written_since() {
        for casskop in ["2026-01-01T09:59:00Z", "2026-01-01T10:00:00Z"] {
            let live = live_with(
                "h2",
                7,
                &[
                    (FIELD_MANAGER, "2026-01-01T10:00:00Z"),
                    ("casskop", casskop),
                ],
            );
            assert_eq!(
                recover_mark(&live, "h2", None).map(|m| m.generation),
                Some(7),
                "{casskop}"
            );
        }
    }

    #[test]
    fn no_recovery_without_our_hash_or_with_a_mark_for_it() {
        let live = live_with("h1", 7, &[(FIELD_MANAGER, "2026-01-01T10:00:00Z")]);
        assert_eq!(
            recover_mark(&live, "h2", None),
            None,
            "our write of h2 never landed"
        );
        let live = live_with("h2", 7, &[(FIELD_MANAGER, "2026-01-01T10:00:00Z")]);
        let mark = AppliedMark {
            hash: "h2".into(),
            generation: 7,
        };
        assert_eq!(
            recover_mark(&live, "h2", Some(&mark)),
            None,
            "the mark is there"
        );
        let no_times = live_with("h2", 7, &[]);
        assert_eq!(recover_mark(&no_times, "h2", None), None, "cannot tell");
    }

    #[test]
    fn ownership_needs_both_owner_labels() {
        let mut obj = DynamicObject::new("cc", &cassandra_cluster_resource()).within("ns");
        assert!(!is_owned_by(&obj, "ops", "mc"));
        obj.labels_mut()
            .insert(OWNER_NAME_LABEL.into(), "mc".into());
        assert!(!is_owned_by(&obj, "ops", "mc"));
        obj.labels_mut()
            .insert(OWNER_NAMESPACE_LABEL.into(), "ops".into());
        assert!(is_owned_by(&obj, "ops", "mc"));
        assert!(!is_owned_by(&obj, "ops", "other"));
    }
}
