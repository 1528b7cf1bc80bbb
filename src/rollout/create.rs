//! Creating a site's CassandraCluster: a create (POST), never an apply; our ownership of its
//! fields recorded as server-side apply before our first apply to it.
//!
//! A server-side apply creates the object when it is absent and takes it over when it exists,
//! so a CassandraCluster someone else created under that name would become ours. A create fails
//! with 409 AlreadyExists instead: the object is left as it is and the site is reported as
//! holding a foreign object. No read comes before the create: our site cache holds every object
//! carrying our owner labels, and the 409 finds any other. (A server-side apply carrying a
//! `metadata.resourceVersion` is no substitute: on an absent object kube-apiserver ignores the
//! precondition for some resources and refuses it for others, "resourceVersion should not be set
//! on objects to be created".)
//!
//! A create records our field manager as an `Update` manager of every field it set. A later
//! server-side apply (an `Apply` manager of the same name: a different owner to the API server)
//! would then never prune a field we stop sending, since the `Update` entry still owns it. So
//! before our first apply to an object we created, that entry is turned into an `Apply` entry,
//! as kubectl does when it moves an object from client-side to server-side apply (client-go's
//! csaupgrade). Most objects are created and never changed by us again: they never need it, and
//! a creation costs one request per site. The rewrite carries the version our apply is computed
//! from as a precondition, so a write by someone else in between is never undone.

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use crate::api::{FIELD_MANAGER, FROM_GENERATION_ANNOTATION};

/// What a create ended with, when the site answered.
#[derive(Debug)]
pub enum Created {
    /// Created: the object as the create returned it.
    Done(Box<DynamicObject>),
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
    match api.create(&params, &object).await {
        Ok(created) => Ok(Created::Done(Box::new(created))),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            match api.get_opt(name).await.map_err(|e| ("get", e))? {
                Some(found) => Ok(Created::Exists(Box::new(found))),
                None => Ok(Created::Vanished),
            }
        }
        Err(e) => Err(("create", e)),
    }
}

/// Before a server-side apply computed from `base` (our cache's copy, without managedFields):
/// when our create was the last write of ours to it (its from-generation annotation is `0`),
/// read its managedFields and turn our create's `Update` entry into an `Apply` entry (see the
/// module doc). Returns the resourceVersion the apply must carry as its precondition (`base`'s,
/// or the rewrite's); `None` when the object changed since `base` or is gone: plan again.
pub async fn own_before_apply(
    api: &Api<DynamicObject>,
    base: &DynamicObject,
) -> Result<Option<String>, (&'static str, kube::Error)> {
    let rv = base.resource_version().unwrap_or_default();
    let created_by_us = base
        .annotations()
        .get(FROM_GENERATION_ANNOTATION)
        .is_some_and(|g| g == "0");
    if !created_by_us {
        return Ok(Some(rv));
    }
    let name = base.name_any();
    let Some(live) = api.get_opt(&name).await.map_err(|e| ("get", e))? else {
        return Ok(None);
    };
    if live.resource_version().as_deref() != Some(rv.as_str()) {
        return Ok(None);
    }
    let Some(entries) = applied_entries(live.metadata.managed_fields.as_deref()) else {
        return Ok(Some(rv));
    };
    let patch = json!({"metadata": {"resourceVersion": rv, "managedFields": entries}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(after) => Ok(Some(after.resource_version().unwrap_or_default())),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(("patch", e)),
    }
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
