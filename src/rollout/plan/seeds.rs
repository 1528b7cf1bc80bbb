//! The cross-site seed list of `spec.autoSeedList`: CassKop's own seed rule over every site's
//! merged CassandraCluster, in rollout order, each seed named in its site's DNS zone.
//!
//! CassKop computes a seed list for its one CassandraCluster (`InitSeedList`, api/v2 of
//! CassKop), naming pods by their in-cluster DNS names, which no other cluster resolves. Across
//! sites the seeds must be names every site resolves: the pods' external-DNS names, in the zone
//! each site publishes through the `external-dns.alpha.kubernetes.io/hostname` annotation of its
//! CassandraCluster's services. So the rule is CassKop's, the domain is the site's, and the list
//! is the concatenation over sites in rollout order. It is a pure function of the merged
//! CassandraClusters: a site added or removed, or a topology changed, changes it by itself, and
//! it reaches the sites through their desired hash, one site at a time like any change.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::SPEC_HASH_ANNOTATION;
use crate::merge::{DesiredCluster, spec_hash};

use super::where_set;

/// The annotation of `spec.service.annotations` that gives a site's DNS zone.
pub const DNS_ZONE_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";
/// At most this many seeds per DC (CassKop's rule).
const SEEDS_PER_DC: i64 = 3;
/// CassKop's names for a DC or a rack the topology does not name.
const DEFAULT_DC: &str = "dc1";
const DEFAULT_RACK: &str = "rack1";

/// Why the seed list cannot be computed. Each names the MultiCasskop field to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// `spec.autoSeedList` is true and a seed list is also written by hand.
    #[error(
        "spec.autoSeedList is true and spec.base.status.seedlist is set: the seed list is either computed (remove spec.base.status.seedlist) or written by hand (remove spec.autoSeedList)"
    )]
    ManualSeeds,
    /// A site's merged CassandraCluster has no DNS zone to name its seeds in.
    #[error(
        "site {site}: spec.autoSeedList names every seed in its site's DNS zone, and CassandraCluster {cluster} of site {site} has no annotation {DNS_ZONE_ANNOTATION} in spec.service.annotations (set it in spec.override.{site}.spec.service.annotations, or in spec.base)"
    )]
    NoDnsZone {
        /// The site.
        site: String,
        /// `namespace/name` of its CassandraCluster.
        cluster: String,
    },
    /// A field the rule reads cannot be used as it is.
    #[error("{field} {problem} (site {site}; spec.autoSeedList reads it to compute the seeds)")]
    Field {
        /// The site whose merged CassandraCluster holds the field.
        site: String,
        /// The MultiCasskop field that set it (`spec.override.<site>....` or `spec.base....`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A field of one CassandraCluster the rule cannot read, before it is traced back to the
/// MultiCasskop field that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Path in the CassandraCluster, e.g. `spec.topology.dc[0].nodesPerRacks`.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

fn rule_error(path: impl Into<String>, problem: impl Into<String>) -> RuleError {
    RuleError {
        path: path.into(),
        problem: problem.into(),
    }
}

/// One DC of a CassandraCluster topology, as the rule reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dc {
    name: String,
    /// `nodesPerRacks` of the DC, when set.
    nodes_per_racks: Option<i64>,
    racks: Vec<String>,
}

/// CassKop's `InitSeedList` over one CassandraCluster `spec`, seeds named
/// `<cluster>-<dc>-<rack>-<i>.<domain>`: up to 3 seeds per DC; with 1 or 2 racks, pods
/// `0 .. 4-racks-1` of each rack (no more than its nodes) until 3; with 3 racks or more, pod 0
/// of the first three racks; a topology without DCs is CassKop's default `dc1`/`rack1`.
pub fn casskop_seeds(cluster: &str, spec: &Value, domain: &str) -> Result<Vec<String>, RuleError> {
    // CassKop defaults a missing or zero nodesPerRacks to 1 before computing its seeds.
    let cluster_nodes = match int_at(spec, "nodesPerRacks", "spec.nodesPerRacks")? {
        None | Some(0) => 1,
        Some(n) => n,
    };
    let dcs = topology(spec)?;
    let mut seeds = Vec::new();
    let mut add = |dc: &str, rack: &str, pod: i64| {
        seeds.push(format!("{cluster}-{dc}-{rack}-{pod}.{domain}"));
    };
    if dcs.is_empty() {
        (0..cluster_nodes.min(SEEDS_PER_DC)).for_each(|i| add(DEFAULT_DC, DEFAULT_RACK, i));
        return Ok(seeds);
    }
    for (d, dc) in dcs.iter().enumerate() {
        if dc.racks.is_empty() {
            check_dc_rack_name(&dc.name, DEFAULT_RACK, d, None)?;
            // CassKop uses the cluster's nodesPerRacks here, not the DC's.
            (0..cluster_nodes.min(SEEDS_PER_DC)).for_each(|i| add(&dc.name, DEFAULT_RACK, i));
            continue;
        }
        let racks = i64::try_from(dc.racks.len()).unwrap_or(i64::MAX);
        let mut in_dc = 0;
        for (r, rack) in dc.racks.iter().enumerate() {
            check_dc_rack_name(&dc.name, rack, d, Some(r))?;
            if racks <= 2 {
                let nodes = nodes_per_racks(&dcs, &dc.name, rack, cluster_nodes);
                let mut pod = 0;
                while pod < nodes && pod < 4 - racks && in_dc < SEEDS_PER_DC {
                    add(&dc.name, rack, pod);
                    pod += 1;
                    in_dc += 1;
                }
            } else if in_dc < SEEDS_PER_DC {
                add(&dc.name, rack, 0);
                in_dc += 1;
            }
        }
    }
    Ok(seeds)
}

/// The nodes per rack CassKop uses for rack `rack` of DC `dc` (its
/// `GetDCNodesPerRacksFromDCRackName`): the first DC holding that DC-rack name gives its
/// `nodesPerRacks`, else the cluster's; as in CassKop, a DC without racks met before it makes
/// it the cluster's.
fn nodes_per_racks(dcs: &[Dc], dc: &str, rack: &str, cluster_nodes: i64) -> i64 {
    let wanted = format!("{dc}-{rack}");
    for d in dcs {
        if d.racks.is_empty() {
            return cluster_nodes;
        }
        if d.racks.iter().any(|r| format!("{}-{r}", d.name) == wanted) {
            return d.nodes_per_racks.unwrap_or(cluster_nodes);
        }
    }
    cluster_nodes
}

/// CassKop names pods (and seeds) `<cluster>-<dc>-<rack>-<i>`, and refuses a DC-rack name
/// that is not a DNS-1035 label (it would then name seeds `<cluster>--<i>`).
fn check_dc_rack_name(dc: &str, rack: &str, d: usize, r: Option<usize>) -> Result<(), RuleError> {
    let name = format!("{dc}-{rack}");
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        return Ok(());
    }
    let path = match r {
        Some(r) => format!("spec.topology.dc[{d}].rack[{r}].name"),
        None => format!("spec.topology.dc[{d}].name"),
    };
    Err(rule_error(
        path,
        format!(
            "(DC and rack) gives {name:?}, which CassKop cannot name pods after (lowercase letters, digits and '-', starting with a letter)"
        ),
    ))
}

/// The DCs of `spec.topology.dc`, in order.
fn topology(spec: &Value) -> Result<Vec<Dc>, RuleError> {
    let dcs = match spec.get("topology").filter(|t| !t.is_null()) {
        None => return Ok(Vec::new()),
        Some(Value::Object(t)) => t.get("dc").filter(|d| !d.is_null()),
        Some(_) => return Err(rule_error("spec.topology", "must be an object")),
    };
    let dcs = match dcs {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(rule_error("spec.topology.dc", "must be a list")),
    };
    dcs.iter()
        .enumerate()
        .map(|(d, dc)| {
            let at = format!("spec.topology.dc[{d}]");
            let name = name_at(dc, &at, DEFAULT_DC)?;
            let nodes_per_racks = int_at(dc, "nodesPerRacks", &format!("{at}.nodesPerRacks"))?;
            let racks = match dc.get("rack").filter(|r| !r.is_null()) {
                None => Vec::new(),
                Some(Value::Array(rs)) => rs
                    .iter()
                    .enumerate()
                    .map(|(r, rack)| name_at(rack, &format!("{at}.rack[{r}]"), DEFAULT_RACK))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(rule_error(format!("{at}.rack"), "must be a list")),
            };
            Ok(Dc {
                name,
                nodes_per_racks,
                racks,
            })
        })
        .collect()
}

/// The `name` of a DC or rack entry at `at` (CassKop's default when absent).
fn name_at(entry: &Value, at: &str, default: &str) -> Result<String, RuleError> {
    if !entry.is_object() {
        return Err(rule_error(at, "must be an object"));
    }
    match entry.get("name").filter(|n| !n.is_null()) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(rule_error(
            format!("{at}.name"),
            "must be a non-empty string",
        )),
    }
}

/// An integer member `key` of `v` (absent or null: `None`); `path` names it in errors.
fn int_at(v: &Value, key: &str, path: &str) -> Result<Option<i64>, RuleError> {
    match v.get(key).filter(|n| !n.is_null()) {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| rule_error(path, format!("must be an integer, found {n}"))),
    }
}

/// The site's DNS zone: its `spec.service.annotations` hostname annotation, trailing dot
/// removed. `Ok(None)`: the annotation is absent.
fn dns_zone(spec: &Value) -> Result<Option<String>, RuleError> {
    let path = format!("spec.service.annotations[{DNS_ZONE_ANNOTATION}]");
    let Some(zone) = spec
        .pointer("/service/annotations")
        .and_then(|a| a.get(DNS_ZONE_ANNOTATION))
        .filter(|z| !z.is_null())
    else {
        return Ok(None);
    };
    let Some(zone) = zone.as_str() else {
        return Err(rule_error(path, "must be a string"));
    };
    let zone = zone.trim().trim_end_matches('.');
    if zone.is_empty() {
        return Ok(None);
    }
    if !crate::merge::is_dns1123_subdomain(zone) {
        return Err(rule_error(
            path,
            format!("{zone:?} is not one DNS zone (lowercase letters, digits, '-' and '.')"),
        ));
    }
    Ok(Some(zone.to_string()))
}

/// One site's part of the federation, as the seed list needs it.
pub struct SiteCluster<'a> {
    pub site: &'a str,
    /// The site's desired (merged) CassandraCluster.
    pub desired: &'a DesiredCluster,
    /// The site's `spec.override` entry, to name the field that set a value.
    pub override_: Option<&'a Value>,
}

/// The seed list of the federation: [`casskop_seeds`] of each site's merged CassandraCluster
/// in its own DNS zone, sites in `sites` order (the rollout order). `base`: `spec.base`.
pub fn federation_seeds(base: &Value, sites: &[SiteCluster<'_>]) -> Result<Vec<String>, SeedError> {
    if base
        .pointer("/status/seedlist")
        .is_some_and(|s| !s.is_null())
    {
        return Err(SeedError::ManualSeeds);
    }
    let mut seeds = Vec::new();
    for s in sites {
        let spec = s.desired.object.get("spec").unwrap_or(&Value::Null);
        let traced = |e: RuleError| SeedError::Field {
            site: s.site.to_string(),
            field: where_set(&e.path, base, s.override_, s.site)
                .unwrap_or_else(|| format!("{} of site {}'s CassandraCluster", e.path, s.site)),
            problem: e.problem,
        };
        let Some(zone) = dns_zone(spec).map_err(traced)? else {
            return Err(SeedError::NoDnsZone {
                site: s.site.to_string(),
                cluster: format!("{}/{}", s.desired.namespace, s.desired.name),
            });
        };
        seeds.extend(casskop_seeds(&s.desired.name, spec, &zone).map_err(traced)?);
    }
    Ok(seeds)
}

/// Computes the federation's seed list from `sites` (each site's name and desired
/// CassandraCluster, in rollout order; `overrides`: `spec.override`, to name fields) and writes
/// it into each desired CassandraCluster.
pub fn write_federation_seeds(
    base: &Value,
    overrides: &BTreeMap<String, Value>,
    sites: &mut [(&str, &mut DesiredCluster)],
) -> Result<(), SeedError> {
    let clusters: Vec<SiteCluster<'_>> = sites
        .iter()
        .map(|(site, desired)| SiteCluster {
            site,
            desired,
            override_: overrides.get(*site),
        })
        .collect();
    let list = federation_seeds(base, &clusters)?;
    for (_, desired) in sites.iter_mut() {
        set_seed_list(desired, &list);
    }
    Ok(())
}

/// Writes `seeds` as the desired object's `status.seedlist` and hashes it again, so that a new
/// list is a change of the site like any other (the hash is what the rollout compares).
pub fn set_seed_list(desired: &mut DesiredCluster, seeds: &[String]) {
    let Some(obj) = desired.object.as_object_mut() else {
        return;
    };
    // The hash covers the object without its own annotation (see `merge::desired_for_site`).
    if let Some(Value::Object(meta)) = obj.get_mut("metadata")
        && let Some(Value::Object(ann)) = meta.get_mut("annotations")
    {
        ann.remove(SPEC_HASH_ANNOTATION);
        if ann.is_empty() {
            meta.remove("annotations");
        }
    }
    let list = Value::Array(seeds.iter().cloned().map(Value::String).collect());
    let mut status = Map::new();
    status.insert("seedlist".into(), list);
    obj.insert("status".into(), Value::Object(status));
    let hash = spec_hash(&desired.object);
    if let Some(Value::Object(meta)) = desired.object.get_mut("metadata") {
        meta.entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("annotations were checked to be a map when the object was built")
            .insert(SPEC_HASH_ANNOTATION.into(), Value::String(hash.clone()));
    }
    desired.hash = hash;
}

/// The seed list a CassandraCluster object holds (`status.seedlist`), empty when none.
pub fn seed_list_of(object: &Value) -> Vec<String> {
    object
        .pointer("/status/seedlist")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
