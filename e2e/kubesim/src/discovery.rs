//! Discovery documents: /version, /api, /apis, group and group-version resource lists, aggregated discovery (apidiscovery.k8s.io/v2).
use serde_json::{Value, json};

use crate::resources::{Registry, ResourceDef};

pub const AGGREGATED_CT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "emulationMajor": "1", "emulationMinor": "32",
        "gitVersion": "v1.32.4-kubesim", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-04-22T00:00:00Z", "goVersion": "go1.23.8",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

pub fn api_versions(addr: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]})
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let (g, vs) = reg
        .groups()
        .into_iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut v = group_json(&g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn sub_group_version(def: &ResourceDef, sub: &str) -> Option<(&'static str, &'static str)> {
    match (def.plural.as_str(), sub) {
        ("serviceaccounts", "token") => Some(("authentication.k8s.io", "v1")),
        ("statefulsets", "scale") => Some(("autoscaling", "v1")),
        _ => None,
    }
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = reg
        .defs
        .iter()
        .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut resources = vec![];
    for d in defs {
        let mut r = json!({"name": d.plural, "singularName": d.singular, "namespaced": d.namespaced,
            "kind": d.kind, "verbs": d.verbs});
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        for (sub, kind, verbs) in &d.subresources {
            let mut s = json!({"name": format!("{}/{sub}", d.plural), "singularName": "", "namespaced": d.namespaced,
                "kind": kind, "verbs": verbs});
            if let Some((g, v)) = sub_group_version(d, sub) {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// Aggregated discovery for /api (`legacy` = true) or /apis.
pub fn aggregated(reg: &Registry, legacy: bool) -> Value {
    let mut items = vec![];
    for (g, vs) in reg.groups() {
        if g.is_empty() != legacy {
            continue;
        }
        let versions: Vec<Value> = vs
            .iter()
            .map(|v| {
                let resources: Vec<Value> = reg
                    .defs
                    .iter()
                    .filter(|d| d.group == g && d.versions.contains(v))
                    .map(|d| {
                        let subs: Vec<Value> = d
                            .subresources
                            .iter()
                            .map(|(sub, kind, verbs)| {
                                let (sg, sv) = sub_group_version(d, sub).unwrap_or((g.as_str(), v.as_str()));
                                json!({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": kind}, "verbs": verbs})
                            })
                            .collect();
                        let mut r = json!({"resource": d.plural,
                            "responseKind": {"group": g, "version": v, "kind": d.kind},
                            "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": d.singular, "verbs": d.verbs});
                        if !d.short_names.is_empty() {
                            r["shortNames"] = json!(d.short_names);
                        }
                        if !d.categories.is_empty() {
                            r["categories"] = json!(d.categories);
                        }
                        if !subs.is_empty() {
                            r["subresources"] = json!(subs);
                        }
                        r
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions}),
        );
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
