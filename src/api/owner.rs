//! The owner labels tying a CassandraCluster at a site to its MultiCasskop: written, read and
//! selected here only (owner references cannot cross clusters).

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Map, Value};

use super::multicasskop::{MultiCasskop, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL};

/// The owner labels an object carries (each `None` when absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerLabels<'a> {
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub site: Option<&'a str>,
}

impl<'a> OwnerLabels<'a> {
    /// The owner labels among `labels`.
    pub fn read(labels: Option<&'a BTreeMap<String, String>>) -> Self {
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        Self {
            namespace: get(OWNER_NAMESPACE_LABEL),
            name: get(OWNER_NAME_LABEL),
            site: get(SITE_LABEL),
        }
    }

    /// The owner labels of `obj`.
    pub fn of(obj: &'a DynamicObject) -> Self {
        Self::read(obj.metadata.labels.as_ref())
    }

    /// True when they name MultiCasskop `owner_ns/owner_name` (whatever the site).
    pub fn name_owner(&self, owner_ns: &str, owner_name: &str) -> bool {
        self.namespace == Some(owner_ns) && self.name == Some(owner_name)
    }

    /// The MultiCasskop they name, when both owner labels are set and non-empty.
    pub fn owner_ref(&self) -> Option<ObjectRef<MultiCasskop>> {
        let (ns, name) = (self.namespace?, self.name?);
        if name.is_empty() || ns.is_empty() {
            return None;
        }
        Some(ObjectRef::new(name).within(ns))
    }
}

/// The MultiCasskop owning a CassandraCluster, from its owner labels.
pub fn owner_of(obj: &DynamicObject) -> Option<ObjectRef<MultiCasskop>> {
    OwnerLabels::of(obj).owner_ref()
}

/// True when `obj` carries the owner labels of MultiCasskop `owner_ns/owner_name`.
pub fn is_owned_by(obj: &DynamicObject, owner_ns: &str, owner_name: &str) -> bool {
    OwnerLabels::read(Some(obj.labels())).name_owner(owner_ns, owner_name)
}

/// Label selector of the CassandraClusters created by MultiCasskops of namespace `owner_ns`.
pub fn owned_selector(owner_ns: &str) -> String {
    format!("{OWNER_NAMESPACE_LABEL}={owner_ns},{OWNER_NAME_LABEL}")
}

/// Sets the owner labels of MultiCasskop `owner_ns/owner_name` at `site` in a JSON label map.
pub fn insert(labels: &mut Map<String, Value>, owner_ns: &str, owner_name: &str, site: &str) {
    labels.insert(OWNER_NAME_LABEL.into(), owner_name.into());
    labels.insert(OWNER_NAMESPACE_LABEL.into(), owner_ns.into());
    labels.insert(SITE_LABEL.into(), site.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cassandra::cassandra_cluster_resource;

    fn cc(labels: &[(&str, &str)]) -> DynamicObject {
        let mut o =
            DynamicObject::new("cassandra-demo", &cassandra_cluster_resource()).within("cassandra");
        for (k, v) in labels {
            o.labels_mut().insert(k.to_string(), v.to_string());
        }
        o
    }

    #[test]
    fn owner_labels_map_to_the_multicasskop_reference() {
        let o = cc(&[(OWNER_NAME_LABEL, "demo"), (OWNER_NAMESPACE_LABEL, "ops")]);
        let r = owner_of(&o).unwrap();
        assert_eq!(r.name, "demo");
        assert_eq!(r.namespace.as_deref(), Some("ops"));
    }

    #[test]
    fn objects_without_both_owner_labels_map_to_nothing() {
        assert!(owner_of(&cc(&[])).is_none());
        assert!(owner_of(&cc(&[(OWNER_NAME_LABEL, "demo")])).is_none());
        assert!(
            owner_of(&cc(&[
                (OWNER_NAME_LABEL, ""),
                (OWNER_NAMESPACE_LABEL, "ops")
            ]))
            .is_none()
        );
    }

    #[test]
    fn selector_matches_only_our_namespace_owners() {
        assert_eq!(
            owned_selector("ops"),
            format!("{OWNER_NAMESPACE_LABEL}=ops,{OWNER_NAME_LABEL}")
        );
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
