//! Creating a site's CassandraCluster: a create (POST), never an apply, then our ownership of its fields recorded as server-side apply.
//!
//! A server-side apply creates the object when it is absent and takes it over when it exists,
//! so a CassandraCluster someone else created between our read and our write would become ours.
//! A create fails with 409 AlreadyExists instead: the object is left as it is and the site is
//! reported as holding a foreign object.
//!
//! A create records our field manager as an `Update` manager of every field it set. Later
//! server-side applies (an `Apply` manager of the same name: a different owner to the API server)
//! would then never prune a field we stop sending, since the `Update` entry still owns it. So the
//! create is followed by a rewrite of `metadata.managedFields` that turns that entry into an
//! `Apply` entry, as kubectl does when it moves an object from client-side to server-side apply
//! (client-go's csaupgrade). It carries the created resourceVersion as a precondition, so a write
//! by someone else in between (CassKop's first status) is never undone: it is read again and the
//! rewrite retried.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::api::FIELD_MANAGER;
use crate::backoff::Backoff;
use crate::kube_error::brief;

/// Rewrites of managedFields tried before giving up (each loses only to a concurrent write).
const OWNERSHIP_ATTEMPTS: usize = 4;

/// What a create ended with, when the site answered.
#[derive(Debug)]
pub enum Created {
    /// Created: `generation` is the one the create gave it (what CassKop acts on was written
    /// then), `latest` the object as our last write (the ownership rewrite) left it. CassKop may
    /// have written in between (its generation moves on every write): the rewrite, which
    /// changes nothing CassKop acts on, must not count as a newer write of ours.
    Done {
        /// The generation the create returned.
        generation: i64,
        /// The object after the ownership rewrite (or as created, when that failed).
        latest: Box<DynamicObject>,
    },
    /// An object of that name exists (409 AlreadyExists): nothing was written.
    Exists(Box<DynamicObject>),
    /// 409 AlreadyExists, but the object was gone again when read: plan again.
    Vanished,
}

/// Create `object` (a whole CassandraCluster) named `name` with our field manager.
///
/// `Err` is a failed request (the create itself, or the read after a 409).
pub async fn create(
    api: &Api<DynamicObject>,
    name: &str,
    object: Value,
) -> Result<Created, (&'static str, kube::Error)> {
    let object: DynamicObject =
        serde_json::from_value(object).map_err(|e| ("create", kube::Error::SerdeError(e)))?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &object).await {
        Ok(created) => created,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return match api.get_opt(name).await.map_err(|e| ("get", e))? {
                Some(found) => Ok(Created::Exists(Box::new(found))),
                None => Ok(Created::Vanished),
            };
        }
        Err(e) => return Err(("create", e)),
    };
    let generation = created.metadata.generation.unwrap_or(0);
    Ok(Created::Done {
        generation,
        latest: Box::new(own_as_applied(api, created).await),
    })
}

/// Turn the `Update` entry our create left in managedFields into an `Apply` entry (see the
/// module doc). Returns the object as the last successful write left it; a failure leaves the
/// created object as it is (logged: only pruning of fields we later stop sending is affected).
async fn own_as_applied(api: &Api<DynamicObject>, created: DynamicObject) -> DynamicObject {
    let name = created.name_any();
    let mut current = created;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(800));
    for attempt in 1..=OWNERSHIP_ATTEMPTS {
        let Some(entries) = applied_entries(current.metadata.managed_fields.as_deref()) else {
            return current;
        };
        let patch = json!({"metadata": {
            "resourceVersion": current.resource_version(),
            "managedFields": entries,
        }});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(after) => return after,
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < OWNERSHIP_ATTEMPTS => {
                debug!(object = %name, "changed since our create: reading it again to record our ownership");
                tokio::time::sleep(backoff.next_delay()).await;
                match api.get_opt(&name).await {
                    Ok(Some(fresh)) => current = fresh,
                    Ok(None) => return current,
                    Err(e) => {
                        warn!(object = %name, error = %brief(&e), "cannot record our ownership of the created CassandraCluster as server-side apply");
                        return current;
                    }
                }
            }
            Err(e) => {
                warn!(object = %name, error = %brief(&e), "cannot record our ownership of the created CassandraCluster as server-side apply");
                return current;
            }
        }
    }
    current
}

/// `entries` with our field manager's `Update` entry of the main resource turned into an
/// `Apply` entry (merged into an existing `Apply` entry of ours, if any); `None` when there is
/// no such `Update` entry (nothing to do).
pub fn applied_entries(entries: Option<&[ManagedFieldsEntry]>) -> Option<Vec<ManagedFieldsEntry>> {
    let entries = entries?;
    let ours = |e: &ManagedFieldsEntry, op: &str| {
        e.manager.as_deref() == Some(FIELD_MANAGER)
            && e.operation.as_deref() == Some(op)
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    };
    let update = entries.iter().find(|e| ours(e, "Update"))?.clone();
    let mut out: Vec<ManagedFieldsEntry> = entries
        .iter()
        .filter(|e| !ours(e, "Update"))
        .cloned()
        .collect();
    match out.iter_mut().find(|e| ours(e, "Apply")) {
        Some(apply) => {
            let mut fields = apply.fields_v1.as_ref().map_or(json!({}), |f| f.0.clone());
            if let Some(more) = &update.fields_v1 {
                json_patch::merge(&mut fields, &more.0);
            }
            apply.fields_v1 = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                fields,
            ));
        }
        None => out.insert(
            0,
            ManagedFieldsEntry {
                operation: Some("Apply".to_string()),
                ..update
            },
        ),
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;

    fn entry(manager: &str, op: &str, sub: Option<&str>, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            operation: Some(op.to_string()),
            subresource: sub.map(str::to_string),
            api_version: Some("db.orange.com/v2".to_string()),
            fields_type: Some("FieldsV1".to_string()),
            fields_v1: Some(FieldsV1(fields)),
            time: None,
        }
    }

    #[test]
    fn our_create_entry_becomes_an_apply_entry_and_others_stay() {
        let entries = vec![
            entry(
                FIELD_MANAGER,
                "Update",
                None,
                json!({"f:spec": {"f:a": {}}}),
            ),
            entry("casskop", "Update", None, json!({"f:status": {}})),
        ];
        let out = applied_entries(Some(&entries)).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].manager.as_deref(), Some(FIELD_MANAGER));
        assert_eq!(out[0].operation.as_deref(), Some("Apply"));
        assert_eq!(out[0].fields_v1, entries[0].fields_v1);
        assert_eq!(out[1], entries[1]);
    }

    #[test]
    fn an_existing_apply_entry_of_ours_absorbs_the_update_entry() {
        let entries = vec![
            entry(FIELD_MANAGER, "Apply", None, json!({"f:spec": {"f:a": {}}})),
            entry(
                FIELD_MANAGER,
                "Update",
                None,
                json!({"f:spec": {"f:b": {}}}),
            ),
        ];
        let out = applied_entries(Some(&entries)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].fields_v1.as_ref().unwrap().0,
            json!({"f:spec": {"f:a": {}, "f:b": {}}})
        );
    }

    #[test]
    fn nothing_to_rewrite_without_our_update_entry() {
        let entries = vec![
            entry(FIELD_MANAGER, "Apply", None, json!({"f:spec": {}})),
            entry(
                FIELD_MANAGER,
                "Update",
                Some("status"),
                json!({"f:status": {}}),
            ),
        ];
        assert_eq!(applied_entries(Some(&entries)), None);
        assert_eq!(applied_entries(None), None);
    }
}
