//! Desired CassandraCluster per site: `base` merged with `override[site]` (RFC 7386), plus
//! Multi-CassKop's seed-list rules, our labels and the spec-hash annotation.
//!
//! The three functions the controller uses, in order:
//! 1. [`desired_for_site`] builds the object we want at a site (pure, validated, hashed);
//! 2. [`preserve_site_owned_fields`] folds into it the few fields the site owns (CassKop's and
//!    humans' flags), given the live object, just before applying and before the drift check;
//! 3. [`live_matches_desired`] is the drift check: does the live object already hold all of it?

use serde_json::{Map, Value};

use crate::api::{OWNER_NAME_LABEL, SITE_LABEL, SPEC_HASH_ANNOTATION};

/// Why a MultiCasskop cannot be turned into desired CassandraClusters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpec {
    /// A field of the MultiCasskop cannot be used as it is: `field` is its path (in `spec.base`
    /// or in the site's `spec.override`), `problem` what is wrong with it and at which site.
    #[error("{field} {problem}")]
    Field { field: String, problem: String },
    /// A site name that cannot be the value of the site label.
    #[error(
        "site name {site:?} cannot be used as the value of label {label} (at most 63 characters: letters, digits, '-', '_', '.')",
        label = SITE_LABEL
    )]
    SiteName { site: String },
    /// A MultiCasskop name that cannot be the value of the owner-name label.
    #[error(
        "MultiCasskop name {name:?} cannot be used as the value of label {label} (at most 63 characters)",
        label = OWNER_NAME_LABEL
    )]
    OwnerName { name: String },
    /// The MultiCasskop's own namespace, which the site's CassandraCluster would inherit, is not
    /// a valid namespace name.
    #[error(
        "namespace {namespace:?} (the MultiCasskop's) is not a valid namespace name (site {site})"
    )]
    OwnerNamespace { namespace: String, site: String },
}

/// A field that cannot be used as it is.
pub fn bad_field(field: impl Into<String>, problem: impl Into<String>) -> InvalidSpec {
    InvalidSpec::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The desired CassandraCluster for one site, ready to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredCluster {
    pub site: String,
    pub name: String,
    pub namespace: String,
    /// Full object (apiVersion, kind, metadata with labels + hash annotation, spec, status.seedlist).
    pub object: Value,
    /// Stable hash of `object` (before the hash annotation was added).
    pub hash: String,
}

/// The only apiVersion a MultiCasskop may create (CassKop's CassandraCluster).
pub const CASSANDRA_CLUSTER_API_VERSION: &str = "db.orange.com/v2";
/// The only kind a MultiCasskop may create.
pub const CASSANDRA_CLUSTER_KIND: &str = "CassandraCluster";

/// `metadata` fields a user may set in `base`/`override` and that we apply. Everything else in
/// metadata is server-managed (uid, resourceVersion, generation, creationTimestamp,
/// deletionTimestamp, managedFields, selfLink) or wrong across clusters (ownerReferences: the
/// owner's uid only exists in one cluster, and a dangling owner reference makes the garbage
/// collector delete the CassandraCluster; generateName: the name is fixed) and is dropped.
/// Finalizers are kept: a user may legitimately protect the CassandraCluster with one of theirs.
const KEPT_METADATA: [&str; 5] = ["name", "namespace", "labels", "annotations", "finalizers"];

/// Annotation copied along when a user pastes a live object into `base`; it describes another
/// object and would be misleading at every site.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// RFC 1123 label: what a namespace must be.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: what an object name must be.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A label value: at most 63 characters, alphanumerics, `-`, `_`, `.`, alphanumeric at both ends.
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Where a merged field came from, to name it in error messages.
fn origin(override_: Option<&Value>, site: &str, path: &[&str]) -> String {
    let in_override = override_.is_some_and(|o| {
        let mut cur = o;
        for p in path {
            match cur.get(p) {
                Some(v) => cur = v,
                None => return false,
            }
        }
        true
    });
    if in_override {
        format!("spec.override.{site}.{}", path.join("."))
    } else {
        format!("spec.base.{}", path.join("."))
    }
}

/// Removes `null` members of objects, recursively (RFC 7386 leaves those of `base` in place, and
/// a `null` in an applied configuration means nothing useful).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Checks that `metadata.<field>` is a map of strings.
fn check_string_map(
    meta: &Map<String, Value>,
    field: &str,
    override_: Option<&Value>,
    site: &str,
) -> Result<(), InvalidSpec> {
    match meta.get(field) {
        None => Ok(()),
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if !v.is_string() {
                    return Err(bad_field(
                        format!("{}.{k}", origin(override_, site, &["metadata", field])),
                        format!("must be a string, found {} (site {site})", json_type(v)),
                    ));
                }
            }
            Ok(())
        }
        Some(v) => Err(bad_field(
            origin(override_, site, &["metadata", field]),
            format!(
                "must be a map of strings, found {} (site {site})",
                json_type(v)
            ),
        )),
    }
}

/// Build the desired object for `site`. `owner_ns`/`owner_name`: the MultiCasskop.
///
/// `override_` `None` or `null` means "no override": the site gets `base` as it is. Errors name
/// the site and the field (`spec.base.metadata.name`, `spec.override.<site>.kind`, ...).
pub fn desired_for_site(
    base: &Value,
    override_: Option<&Value>,
    site: &str,
    owner_ns: &str,
    owner_name: &str,
) -> Result<DesiredCluster, InvalidSpec> {
    let (base_obj, override_) = check_inputs(base, override_, site, owner_name)?;
    let name = cluster_name(base_obj, override_, site)?;
    let mut merged = base.clone();
    if let Some(o) = override_ {
        json_patch::merge(&mut merged, o);
    }
    strip_nulls(&mut merged);
    let obj = merged
        .as_object_mut()
        .expect("merge of two objects is an object");

    check_kind(obj, override_, site)?;
    let namespace = site_metadata(obj, override_, site, (owner_ns, owner_name), &name)?;
    pin_seed_list(obj, override_, site)?;
    keep_base_seed_list(obj, base_obj)?;
    let hash = spec_hash(&merged);
    let meta = merged["metadata"].as_object_mut().expect("inserted above");
    meta.entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("checked above")
        .insert(SPEC_HASH_ANNOTATION.into(), Value::String(hash.clone()));

    Ok(DesiredCluster {
        site: site.to_string(),
        name,
        namespace,
        object: merged,
        hash,
    })
}
/// The inputs as objects; the site and MultiCasskop names usable as label values.
fn check_inputs<'a>(
    base: &'a Value,
    override_: Option<&'a Value>,
    site: &str,
    owner_name: &str,
) -> Result<(&'a Map<String, Value>, Option<&'a Value>), InvalidSpec> {
    let base_obj = base.as_object().ok_or_else(|| {
        bad_field(
            "spec.base",
            format!(
                "must be an object (a whole CassandraCluster), found {}",
                json_type(base)
            ),
        )
    })?;
    let override_ = override_.filter(|o| !o.is_null());
    if let Some(o) = override_
        && !o.is_object()
    {
        return Err(bad_field(
            format!("spec.override.{site}"),
            format!(
                "must be an object (a partial CassandraCluster), found {}",
                json_type(o)
            ),
        ));
    }
    if !is_label_value(site) || site.is_empty() {
        return Err(InvalidSpec::SiteName {
            site: site.to_string(),
        });
    }
    if !is_label_value(owner_name) {
        return Err(InvalidSpec::OwnerName {
            name: owner_name.to_string(),
        });
    }

    Ok((base_obj, override_))
}

/// The CassandraCluster's name: base's, required, the same at every site.
fn cluster_name(
    base_obj: &Map<String, Value>,
    override_: Option<&Value>,
    site: &str,
) -> Result<String, InvalidSpec> {
    let base_meta = match base_obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(v) => {
            return Err(bad_field(
                "spec.base.metadata",
                format!("must be an object, found {}", json_type(v)),
            ));
        }
    };
    let name = match base_meta.and_then(|m| m.get("name")) {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(v) if !v.is_null() && !v.is_string() => {
            return Err(bad_field(
                "spec.base.metadata.name",
                format!("must be a string, found {}", json_type(v)),
            ));
        }
        _ => {
            return Err(bad_field(
                "spec.base.metadata.name",
                "is required: it names the CassandraCluster at every site",
            ));
        }
    };
    if !is_dns1123_subdomain(&name) {
        return Err(bad_field(
            "spec.base.metadata.name",
            format!(
                "{name:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)"
            ),
        ));
    }
    if let Some(o_name) = override_
        .and_then(|o| o.get("metadata"))
        .and_then(|m| m.get("name"))
        && !o_name.is_null()
        && o_name.as_str() != Some(name.as_str())
    {
        return Err(bad_field(
            format!("spec.override.{site}.metadata.name"),
            format!(
                "({o_name}) differs from spec.base.metadata.name ({name:?}): the CassandraCluster has the same name at every site"
            ),
        ));
    }

    Ok(name)
}

/// apiVersion / kind: CassKop's CassandraCluster only (filled in when absent).
fn check_kind(
    obj: &mut Map<String, Value>,
    override_: Option<&Value>,
    site: &str,
) -> Result<(), InvalidSpec> {
    for (field, expected) in [
        ("apiVersion", CASSANDRA_CLUSTER_API_VERSION),
        ("kind", CASSANDRA_CLUSTER_KIND),
    ] {
        match obj.get(field) {
            None => {
                obj.insert(field.to_string(), Value::String(expected.to_string()));
            }
            Some(Value::String(s)) if s == expected => {}
            Some(v) => {
                return Err(bad_field(
                    origin(override_, site, &[field]),
                    format!(
                        "is {v}, but a MultiCasskop only creates {expected} ({CASSANDRA_CLUSTER_API_VERSION} {CASSANDRA_CLUSTER_KIND}) (site {site})"
                    ),
                ));
            }
        }
    }

    Ok(())
}

/// metadata: keep what a user may set, validate it, add ours. Returns the namespace.
fn site_metadata(
    obj: &mut Map<String, Value>,
    override_: Option<&Value>,
    site: &str,
    (owner_ns, owner_name): (&str, &str),
    name: &str,
) -> Result<String, InvalidSpec> {
    let mut meta = match obj.remove("metadata") {
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(bad_field(
                format!("spec.override.{site}.metadata"),
                format!("must be an object, found {}", json_type(&v)),
            ));
        }
        None => Map::new(),
    };
    meta.retain(|k, _| KEPT_METADATA.contains(&k.as_str()));
    let namespace = match meta.get("namespace") {
        None => owner_ns.to_string(),
        Some(Value::String(ns)) if is_dns1123_label(ns) => ns.clone(),
        Some(v) => {
            return Err(bad_field(
                origin(override_, site, &["metadata", "namespace"]),
                format!("{v} is not a valid namespace name (site {site})"),
            ));
        }
    };
    if !is_dns1123_label(&namespace) {
        return Err(InvalidSpec::OwnerNamespace {
            namespace: namespace.clone(),
            site: site.to_string(),
        });
    }
    check_string_map(&meta, "labels", override_, site)?;
    check_string_map(&meta, "annotations", override_, site)?;
    match meta.get("finalizers") {
        None => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(v) => {
            return Err(bad_field(
                origin(override_, site, &["metadata", "finalizers"]),
                format!(
                    "must be a list of strings, found {} (site {site})",
                    json_type(v)
                ),
            ));
        }
    }
    meta.insert("name".into(), Value::String(name.to_string()));
    meta.insert("namespace".into(), Value::String(namespace.clone()));
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("checked above");
    crate::api::owner::insert(labels, owner_ns, owner_name, site);
    if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
        ann.remove(SPEC_HASH_ANNOTATION);
        ann.remove(LAST_APPLIED_ANNOTATION);
        if ann.is_empty() {
            meta.remove("annotations");
        }
    }
    obj.insert("metadata".into(), Value::Object(meta));

    Ok(namespace)
}

/// spec: Multi-CassKop writes the seed list itself, CassKop must not recompute it.
fn pin_seed_list(
    obj: &mut Map<String, Value>,
    override_: Option<&Value>,
    site: &str,
) -> Result<(), InvalidSpec> {
    let spec = obj
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(spec) = spec.as_object_mut() else {
        return Err(bad_field(
            origin(override_, site, &["spec"]),
            format!("must be an object, found {} (site {site})", json_type(spec)),
        ));
    };
    spec.insert("autoUpdateSeedList".into(), Value::Bool(false));

    Ok(())
}

/// status: only the seed list, and only base's (Multi-CassKop's rule).
fn keep_base_seed_list(
    obj: &mut Map<String, Value>,
    base_obj: &Map<String, Value>,
) -> Result<(), InvalidSpec> {
    obj.remove("status");
    match base_obj.get("status") {
        None | Some(Value::Null) => {}
        Some(Value::Object(st)) => {
            if let Some(seeds) = st.get("seedlist").filter(|s| !s.is_null()) {
                if !seeds
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string))
                {
                    return Err(bad_field(
                        "spec.base.status.seedlist",
                        format!("must be a list of host names, found {}", json_type(seeds)),
                    ));
                }
                let mut status = Map::new();
                status.insert("seedlist".into(), seeds.clone());
                obj.insert("status".into(), Value::Object(status));
            }
        }
        Some(v) => {
            return Err(bad_field(
                "spec.base.status",
                format!("must be an object, found {}", json_type(v)),
            ));
        }
    }

    Ok(())
}

/// Writes `v` as JSON with object keys sorted, whatever map type serde_json was built with.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// FNV-1a 64 over the canonical JSON of `v`, as 16 hex digits. Stable across Rust versions,
/// platforms and restarts (std's `DefaultHasher` is not), so it can live in annotations and status.
pub fn spec_hash(v: &Value) -> String {
    let mut s = String::new();
    write_canonical(v, &mut s);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn contains(desired: &Value, live: &Value, path: &mut Vec<String>) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| {
            if dv.is_null() {
                return true;
            }
            let Some(lv) = l.get(k) else { return false };
            path.push(k.clone());
            let ok = contains(dv, lv, path);
            path.pop();
            ok
        }),
        (Value::Array(d), Value::Array(l)) => {
            if path.len() == 2 && path[0] == "metadata" && path[1] == "finalizers" {
                // A set: others (CassKop, users) add their own finalizers next to ours.
                d.iter().all(|x| l.contains(x))
            } else {
                // Atomic lists (CRD default): ours replace the whole list.
                d.len() == l.len() && d.iter().zip(l).all(|(dx, lx)| contains(dx, lx, path))
            }
        }
        (Value::Number(d), Value::Number(l)) => d == l || d.as_f64() == l.as_f64(),
        (d, l) => d == l,
    }
}

/// True when `live` already holds every field of `desired` (lists compared element-wise).
///
/// Objects: every member of `desired` is in `live` with a matching value (extra members in
/// `live`, written by CassKop or defaulted by the API server, are fine). Lists: same length and
/// element-wise matching, except `metadata.finalizers`, compared as a set. The spec-hash
/// annotation is part of `desired`, so a live object written from another desired hash does not
/// match. `live` is the whole object as JSON (`serde_json::to_value(&dynamic_object)`).
/// Call [`preserve_site_owned_fields`] on `desired` first.
pub fn live_matches_desired(desired: &Value, live: &Value) -> bool {
    contains(desired, live, &mut Vec::new())
}

/// Rack-level flags that the site (CassKop, or a human with kubectl) owns once set.
const SITE_OWNED_RACK_FLAGS: [&str; 1] = ["rollingRestart"];
/// Spec flags that the site owns once set: CassKop's operation lock, reset by CassKop itself.
const SITE_OWNED_SPEC_FLAGS: [&str; 1] = ["unlockNextOperation"];
/// Spec fields left as stored when the desired object does not set them (CassKop defaults them).
const KEPT_WHEN_UNSET: [&str; 3] = ["runAsUser", "fsGroup", "serverType"];

/// Multi-CassKop's rules for fields the site owns, applied to `desired` given the `live` object:
///
/// - `spec.topology.dc[].rack[].rollingRestart`: when the live rack (same dc and rack name) has
///   the flag, desired takes the live value. The dc/rack list is atomic, so without this every
///   apply would re-set a flag CassKop cleared (or clear one a human set), restarting racks.
///   A flag in desired for a rack whose live copy has none goes through (the user asks for a
///   rolling restart, e.g. at creation).
/// - `spec.unlockNextOperation` likewise (CassKop consumes and resets it).
/// - `spec.runAsUser`, `spec.fsGroup`, `spec.serverType`: when desired does not set them, the
///   live values are kept (copied into desired, so an apply never removes them).
///
/// The hash annotation is left as is: it stands for what the user asked, not for these fields.
/// The controller calls this right before applying and before [`live_matches_desired`], so a
/// difference in these fields is neither drift nor a reason to write. Idempotent.
pub fn preserve_site_owned_fields(desired: &mut Value, live: &Value) {
    let Some(live_spec) = live.get("spec").and_then(Value::as_object) else {
        return;
    };
    let Some(spec) = desired.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for key in KEPT_WHEN_UNSET {
        if spec.get(key).is_none_or(Value::is_null)
            && let Some(v) = live_spec.get(key).filter(|v| !v.is_null())
        {
            spec.insert(key.to_string(), v.clone());
        }
    }
    for key in SITE_OWNED_SPEC_FLAGS {
        if let Some(v) = live_spec.get(key).filter(|v| !v.is_null()) {
            spec.insert(key.to_string(), v.clone());
        }
    }
    let live_dcs = live_spec
        .get("topology")
        .and_then(|t| t.get("dc"))
        .and_then(Value::as_array);
    let Some(live_dcs) = live_dcs else { return };
    let Some(dcs) = spec
        .get_mut("topology")
        .and_then(|t| t.get_mut("dc"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for dc in dcs {
        let Some(dc_name) = dc.get("name").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let Some(live_dc) = live_dcs
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(&dc_name))
        else {
            continue;
        };
        let Some(racks) = dc.get_mut("rack").and_then(Value::as_array_mut) else {
            continue;
        };
        let live_racks = live_dc.get("rack").and_then(Value::as_array);
        for rack in racks {
            let rack_name = rack.get("name").and_then(Value::as_str);
            let Some(live_rack) = live_racks.and_then(|lr| {
                lr.iter().find(|r| {
                    rack_name.is_some() && r.get("name").and_then(Value::as_str) == rack_name
                })
            }) else {
                continue;
            };
            let Some(rack) = rack.as_object_mut() else {
                continue;
            };
            for flag in SITE_OWNED_RACK_FLAGS {
                if let Some(v) = live_rack.get(flag).filter(|v| !v.is_null()) {
                    rack.insert(flag.to_string(), v.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OWNER_NAMESPACE_LABEL;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "apiVersion": "db.orange.com/v2",
            "kind": "CassandraCluster",
            "metadata": {
                "name": "cassandra-demo",
                "labels": {"cluster": "k8s.pic"},
                "uid": "0d9c-old",
                "resourceVersion": "1234",
                "generation": 7,
                "creationTimestamp": "2020-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl"}],
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}],
                "finalizers": ["example.com/keep"],
            },
            "spec": {
                "nodesPerRacks": 1,
                "cassandraImage": "cassandra:3.11.6",
                "autoUpdateSeedList": true,
                "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]},
            },
            "status": {
                "seedlist": ["cassandra-demo-dc1-rack1-0.cassandra-demo.ns", "cassandra-demo-dc2-rack1-0.cassandra-demo.ns"],
                "phase": "Running",
                "lastClusterAction": "Initializing",
            },
        })
    }

    fn desired(override_: Value) -> Result<DesiredCluster, InvalidSpec> {
        desired_for_site(
            &base(),
            Some(&override_),
            "k8s-cluster2",
            "cassandra-demo",
            "demo",
        )
    }

    fn err(override_: Value) -> String {
        desired(override_).unwrap_err().to_string()
    }

    #[test]
    fn override_wins_objects_merge_and_lists_are_replaced() {
        let d = desired(json!({
            "spec": {
                "cassandraImage": "cassandra:3.11.7",
                "topology": {"dc": [{"name": "dc2", "rack": [{"name": "rack1"}, {"name": "rack2"}]}]},
            }
        }))
        .unwrap();
        assert_eq!(d.object["spec"]["cassandraImage"], "cassandra:3.11.7");
        assert_eq!(d.object["spec"]["nodesPerRacks"], 1);
        assert_eq!(
            d.object["spec"]["topology"]["dc"],
            json!([{"name": "dc2", "rack": [{"name": "rack1"}, {"name": "rack2"}]}])
        );
    }

    #[test]
    fn null_in_override_removes_a_base_field() {
        let d = desired(json!({"spec": {"nodesPerRacks": null}})).unwrap();
        assert!(d.object["spec"].get("nodesPerRacks").is_none());
    }

    #[test]
    fn seed_list_rules_of_multi_casskop() {
        let d = desired(json!({"status": {"seedlist": ["other"], "phase": "Pending"}})).unwrap();
        assert_eq!(d.object["spec"]["autoUpdateSeedList"], false);
        assert_eq!(
            d.object["status"],
            json!({"seedlist": ["cassandra-demo-dc1-rack1-0.cassandra-demo.ns", "cassandra-demo-dc2-rack1-0.cassandra-demo.ns"]})
        );
        let mut b = base();
        b.as_object_mut().unwrap().remove("status");
        let d = desired_for_site(&b, None, "a", "ns", "demo").unwrap();
        assert!(d.object.get("status").is_none());
        assert_eq!(d.object["spec"]["autoUpdateSeedList"], false);
    }

    #[test]
    fn labels_name_and_server_managed_metadata() {
        let d = desired(json!({})).unwrap();
        let meta = d.object["metadata"].as_object().unwrap();
        let mut keys: Vec<_> = meta.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["annotations", "finalizers", "labels", "name", "namespace"]
        );
        assert_eq!(d.name, "cassandra-demo");
        assert_eq!(meta["labels"]["cluster"], "k8s.pic");
        assert_eq!(meta["labels"][OWNER_NAME_LABEL], "demo");
        assert_eq!(meta["labels"][OWNER_NAMESPACE_LABEL], "cassandra-demo");
        assert_eq!(meta["labels"][SITE_LABEL], "k8s-cluster2");
        assert_eq!(meta["finalizers"], json!(["example.com/keep"]));
        assert_eq!(meta["annotations"][SPEC_HASH_ANNOTATION], d.hash.as_str());
        assert_eq!(d.object["apiVersion"], "db.orange.com/v2");
        assert_eq!(d.object["kind"], "CassandraCluster");
    }

    #[test]
    fn namespace_from_override_else_base_else_owner() {
        assert_eq!(desired(json!({})).unwrap().namespace, "cassandra-demo");
        let mut b = base();
        b["metadata"]["namespace"] = json!("from-base");
        let d = desired_for_site(&b, None, "a", "owner-ns", "demo").unwrap();
        assert_eq!(d.namespace, "from-base");
        let o = json!({"metadata": {"namespace": "from-override"}});
        let d = desired_for_site(&b, Some(&o), "a", "owner-ns", "demo").unwrap();
        assert_eq!(d.namespace, "from-override");
        assert_eq!(d.object["metadata"]["namespace"], "from-override");
    }

    #[test]
    fn api_version_and_kind_default_and_are_checked() {
        let mut b = base();
        b.as_object_mut().unwrap().remove("apiVersion");
        b.as_object_mut().unwrap().remove("kind");
        let d = desired_for_site(&b, None, "a", "ns", "demo").unwrap();
        assert_eq!(d.object["apiVersion"], "db.orange.com/v2");
        assert_eq!(d.object["kind"], "CassandraCluster");
        let e = err(json!({"kind": "StatefulSet"}));
        assert!(e.contains("spec.override.k8s-cluster2.kind"), "{e}");
        b["apiVersion"] = json!("db.orange.com/v1alpha1");
        let e = desired_for_site(&b, None, "a", "ns", "demo")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.base.apiVersion"), "{e}");
    }

    #[test]
    fn invalid_specs_name_the_field_and_site() {
        let cases: Vec<(Value, Option<Value>, &str)> = vec![
            (json!("text"), None, "spec.base must be an object"),
            (
                json!({"spec": {}}),
                None,
                "spec.base.metadata.name is required",
            ),
            (
                json!({"metadata": {"name": 3}}),
                None,
                "spec.base.metadata.name must be a string",
            ),
            (
                json!({"metadata": {"name": "Bad_Name"}}),
                None,
                "not a valid Kubernetes name",
            ),
            (
                json!({"metadata": "x"}),
                None,
                "spec.base.metadata must be an object",
            ),
            (
                base(),
                Some(json!([1])),
                "spec.override.s1 must be an object",
            ),
            (
                base(),
                Some(json!({"metadata": {"name": "other"}})),
                "spec.override.s1.metadata.name",
            ),
            (
                base(),
                Some(json!({"metadata": {"namespace": "Not OK"}})),
                "spec.override.s1.metadata.namespace",
            ),
            (
                base(),
                Some(json!({"metadata": {"labels": {"a": 1}}})),
                "spec.override.s1.metadata.labels.a must be a string",
            ),
            (
                base(),
                Some(json!({"metadata": {"annotations": []}})),
                "spec.override.s1.metadata.annotations must be a map",
            ),
            (
                base(),
                Some(json!({"metadata": {"finalizers": "x"}})),
                "spec.override.s1.metadata.finalizers must be a list",
            ),
            (
                base(),
                Some(json!({"spec": "x"})),
                "spec.override.s1.spec must be an object",
            ),
            (
                base(),
                Some(json!({"metadata": 1})),
                "spec.override.s1.metadata must be an object",
            ),
            (
                json!({"metadata": {"name": "a"}, "status": {"seedlist": "h1"}}),
                None,
                "spec.base.status.seedlist",
            ),
        ];
        for (b, o, expected) in cases {
            let e = desired_for_site(&b, o.as_ref(), "s1", "ns", "demo")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "expected {expected:?} in {e:?}");
        }
        let e = desired_for_site(&base(), None, "bad site!", "ns", "demo").unwrap_err();
        assert!(e.to_string().contains("bad site!"), "{e}");
        let e = desired_for_site(&base(), None, "s", "Bad NS", "demo").unwrap_err();
        assert!(e.to_string().contains("Bad NS"), "{e}");
    }

    #[test]
    fn null_override_means_base_as_is() {
        let a = desired_for_site(&base(), Some(&Value::Null), "s", "ns", "demo").unwrap();
        let b = desired_for_site(&base(), None, "s", "ns", "demo").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn hash_is_stable_and_changes_with_content() {
        let a = desired(json!({})).unwrap();
        let b = desired(json!({})).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 16);
        // Independent of key order in the input.
        let reordered: Value = serde_json::from_str(
            r#"{"spec":{"topology":{"dc":[{"rack":[{"name":"rack1"}],"name":"dc1"}]},"autoUpdateSeedList":true,"cassandraImage":"cassandra:3.11.6","nodesPerRacks":1},"metadata":{"finalizers":["example.com/keep"],"labels":{"cluster":"k8s.pic"},"name":"cassandra-demo"},"kind":"CassandraCluster","apiVersion":"db.orange.com/v2","status":{"seedlist":["cassandra-demo-dc1-rack1-0.cassandra-demo.ns","cassandra-demo-dc2-rack1-0.cassandra-demo.ns"]}}"#,
        )
        .unwrap();
        let c =
            desired_for_site(&reordered, None, "k8s-cluster2", "cassandra-demo", "demo").unwrap();
        assert_eq!(a.hash, c.hash);
        let d = desired(json!({"spec": {"cassandraImage": "cassandra:4"}})).unwrap();
        assert_ne!(a.hash, d.hash);
        let other_site =
            desired_for_site(&base(), None, "k8s-cluster3", "cassandra-demo", "demo").unwrap();
        assert_ne!(a.hash, other_site.hash);
        // Pinned (checked against an independent FNV-1a): the hash is persisted in annotations and status, it must not drift between builds.
        assert_eq!(
            spec_hash(&json!({"b": [1, "x"], "a": null})),
            spec_hash(&json!({"a": null, "b": [1, "x"]}))
        );
        assert_eq!(spec_hash(&json!({})), "08f44b07b5901a25");
    }

    #[test]
    fn hash_is_computed_without_the_hash_annotation() {
        let d = desired(json!({})).unwrap();
        let mut without = d.object.clone();
        without["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(SPEC_HASH_ANNOTATION);
        if without["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .is_empty()
        {
            without["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
        assert_eq!(spec_hash(&without), d.hash);
        // A stale hash annotation pasted into base does not leak into the result.
        let mut b = base();
        b["metadata"]["annotations"] = json!({SPEC_HASH_ANNOTATION: "stale"});
        let d2 = desired_for_site(&b, None, "k8s-cluster2", "cassandra-demo", "demo").unwrap();
        assert_eq!(d2.hash, d.hash);
    }

    #[test]
    fn live_contains_desired() {
        let d = desired(json!({})).unwrap().object;
        let mut live = d.clone();
        assert!(live_matches_desired(&d, &live));
        live["metadata"]["resourceVersion"] = json!("99");
        live["metadata"]["finalizers"] = json!(["cassandra.db.orange.com/pvc", "example.com/keep"]);
        live["spec"]["dataCapacity"] = json!("1Gi");
        live["spec"]["topology"]["dc"][0]["rack"][0]["rollingRestart"] = json!(false);
        live["status"]["phase"] = json!("Running");
        assert!(live_matches_desired(&d, &live));
        let mut changed = live.clone();
        changed["spec"]["cassandraImage"] = json!("cassandra:4");
        assert!(!live_matches_desired(&d, &changed));
        let mut more_racks = live.clone();
        more_racks["spec"]["topology"]["dc"][0]["rack"] =
            json!([{"name": "rack1"}, {"name": "rack2"}]);
        assert!(!live_matches_desired(&d, &more_racks));
        let mut other_hash = live.clone();
        other_hash["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = json!("0000000000000000");
        assert!(!live_matches_desired(&d, &other_hash));
        let mut no_finalizer = live.clone();
        no_finalizer["metadata"]["finalizers"] = json!(["cassandra.db.orange.com/pvc"]);
        assert!(!live_matches_desired(&d, &no_finalizer));
        assert!(live_matches_desired(&json!({"a": 1}), &json!({"a": 1.0})));
        assert!(live_matches_desired(&json!({"a": null}), &json!({})));
    }

    #[test]
    fn site_owned_fields_are_kept_from_live() {
        let mut d = desired(json!({"spec": {"topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "rack1"}, {"name": "rack2", "rollingRestart": true}, {"name": "rack3", "rollingRestart": true}]}
        ]}}}))
        .unwrap()
        .object;
        let hash_before = d["metadata"]["annotations"][SPEC_HASH_ANNOTATION].clone();
        let live = json!({"spec": {
            "runAsUser": 999, "fsGroup": 1, "serverType": "cassandra", "unlockNextOperation": false,
            "topology": {"dc": [{"name": "dc1", "rack": [
                {"name": "rack1", "rollingRestart": true},
                {"name": "rack2", "rollingRestart": false},
            ]}]},
        }});
        preserve_site_owned_fields(&mut d, &live);
        let racks = &d["spec"]["topology"]["dc"][0]["rack"];
        assert_eq!(racks[0]["rollingRestart"], true, "a human's flag survives");
        assert_eq!(
            racks[1]["rollingRestart"], false,
            "CassKop's reset is not undone"
        );
        assert_eq!(
            racks[2]["rollingRestart"], true,
            "a new rack's flag goes through"
        );
        assert_eq!(d["spec"]["runAsUser"], 999);
        assert_eq!(d["spec"]["fsGroup"], 1);
        assert_eq!(d["spec"]["serverType"], "cassandra");
        assert_eq!(d["spec"]["unlockNextOperation"], false);
        assert_eq!(
            d["metadata"]["annotations"][SPEC_HASH_ANNOTATION],
            hash_before
        );
        let once = d.clone();
        preserve_site_owned_fields(&mut d, &live);
        assert_eq!(d, once, "idempotent");

        // A desired value for runAsUser wins over live.
        let mut d = desired(json!({"spec": {"runAsUser": 1000}}))
            .unwrap()
            .object;
        preserve_site_owned_fields(&mut d, &live);
        assert_eq!(d["spec"]["runAsUser"], 1000);
    }
}
