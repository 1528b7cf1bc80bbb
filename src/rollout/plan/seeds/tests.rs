use serde_json::{Value, json};

use super::*;
use crate::merge::desired_for_site;

const DOMAIN: &str = "cassandra-demo.ns";

/// A topology of DCs `(name, nodesPerRacks, racks)`.
fn spec(nodes: Option<i64>, dcs: &[(&str, Option<i64>, &[&str])]) -> Value {
    let dcs: Vec<Value> = dcs
        .iter()
        .map(|(name, npr, racks)| {
            let mut dc = json!({"name": name, "rack": racks.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()});
            if let Some(n) = npr {
                dc["nodesPerRacks"] = json!(n);
            }
            dc
        })
        .collect();
    let mut spec = json!({"topology": {"dc": dcs}});
    if let Some(n) = nodes {
        spec["nodesPerRacks"] = json!(n);
    }
    spec
}

fn seeds(spec: &Value) -> Vec<String> {
    casskop_seeds("cassandra-demo", spec, DOMAIN).expect("a usable topology")
}

fn named(pods: &[&str]) -> Vec<String> {
    pods.iter()
        .map(|p| format!("cassandra-demo-{p}.{DOMAIN}"))
        .collect()
}

/// CassKop's own `InitSeedList` tests (api/v2 of CassKop) give these lists with its naming
/// `<pod>.<cluster>.<namespace>`, here the domain `cassandra-demo.ns`.
#[test]
fn seed_rule_gives_casskop_lists_for_casskop_test_topologies() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "2DC: two racks each, 6 and 2 nodes",
            spec(
                Some(6),
                &[
                    ("online", None, &["rack1", "rack2"]),
                    ("stats", Some(2), &["rack1", "rack2"]),
                ],
            ),
            vec![
                "online-rack1-0",
                "online-rack1-1",
                "online-rack2-0",
                "stats-rack1-0",
                "stats-rack1-1",
                "stats-rack2-0",
            ],
        ),
        (
            "NoTopo: CassKop's dc1/rack1, 3 of 8",
            json!({"nodesPerRacks": 8}),
            vec!["dc1-rack1-0", "dc1-rack1-1", "dc1-rack1-2"],
        ),
        (
            "1DC: two racks of 7",
            spec(Some(7), &[("online", None, &["rack1", "rack2"])]),
            vec!["online-rack1-0", "online-rack1-1", "online-rack2-0"],
        ),
        (
            "2DC5R: pod 0 of the first three racks",
            spec(
                Some(6),
                &[
                    (
                        "online",
                        None,
                        &["rack1", "rack2", "rack3", "rack4", "rack5"],
                    ),
                    ("stats", Some(2), &["rack1", "rack2", "rack3", "rack4"]),
                ],
            ),
            vec![
                "online-rack1-0",
                "online-rack2-0",
                "online-rack3-0",
                "stats-rack1-0",
                "stats-rack2-0",
                "stats-rack3-0",
            ],
        ),
        (
            "1DC1R1P: two racks of one node",
            spec(Some(1), &[("online", None, &["rack1", "rack2"])]),
            vec!["online-rack1-0", "online-rack2-0"],
        ),
    ];
    for (what, spec, want) in cases {
        assert_eq!(seeds(&spec), named(&want), "{what}");
    }
}

#[test]
fn seed_rule_follows_racks_and_nodes_per_dc() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "one rack of 1 (the default)",
            spec(None, &[("dc1", None, &["rack1"])]),
            vec!["dc1-rack1-0"],
        ),
        (
            "nodesPerRacks 0 is CassKop's default 1",
            spec(Some(0), &[("dc1", None, &["rack1"])]),
            vec!["dc1-rack1-0"],
        ),
        (
            "one rack of 5: pods 0..2",
            spec(Some(5), &[("dc1", None, &["rack1"])]),
            vec!["dc1-rack1-0", "dc1-rack1-1", "dc1-rack1-2"],
        ),
        (
            "one rack, DC's 2 nodes win over 5",
            spec(Some(5), &[("dc1", Some(2), &["rack1"])]),
            vec!["dc1-rack1-0", "dc1-rack1-1"],
        ),
        (
            "two racks of 1",
            spec(Some(1), &[("dc1", None, &["a", "b"])]),
            vec!["dc1-a-0", "dc1-b-0"],
        ),
        (
            "two racks of 3: 2 then 1",
            spec(Some(3), &[("dc1", None, &["a", "b"])]),
            vec!["dc1-a-0", "dc1-a-1", "dc1-b-0"],
        ),
        (
            "three racks: pod 0 each",
            spec(Some(4), &[("dc1", None, &["a", "b", "c"])]),
            vec!["dc1-a-0", "dc1-b-0", "dc1-c-0"],
        ),
        (
            "three racks of 0 nodes: still pod 0 (CassKop does not check)",
            spec(Some(1), &[("dc1", Some(0), &["a", "b", "c"])]),
            vec!["dc1-a-0", "dc1-b-0", "dc1-c-0"],
        ),
        (
            "two racks of 0 nodes: none",
            spec(Some(1), &[("dc1", Some(0), &["a", "b"])]),
            vec![],
        ),
        (
            "a DC without racks: rack1, the cluster's nodes",
            spec(Some(2), &[("dc1", Some(5), &[])]),
            vec!["dc1-rack1-0", "dc1-rack1-1"],
        ),
        (
            "a DC without racks first makes the next DC use the cluster's nodes (CassKop's lookup)",
            spec(Some(1), &[("dc1", None, &[]), ("dc2", Some(3), &["rack1"])]),
            vec!["dc1-rack1-0", "dc2-rack1-0"],
        ),
    ];
    for (what, spec, want) in cases {
        assert_eq!(seeds(&spec), named(&want), "{what}");
    }
}

#[test]
fn seed_rule_refuses_what_casskop_cannot_name() {
    let bad_rack = spec(Some(1), &[("dc1", None, &["Rack_1"])]);
    let e = casskop_seeds("c", &bad_rack, DOMAIN).unwrap_err();
    assert_eq!(e.path, "spec.topology.dc[0].rack[0].name");
    assert!(e.problem.contains("\"dc1-Rack_1\""), "{}", e.problem);
    let e = casskop_seeds("c", &json!({"nodesPerRacks": "3"}), DOMAIN).unwrap_err();
    assert_eq!(e.path, "spec.nodesPerRacks");
    let e = casskop_seeds(
        "c",
        &json!({"topology": {"dc": [{"name": "dc1", "nodesPerRacks": true}]}}),
        DOMAIN,
    )
    .unwrap_err();
    assert_eq!(e.path, "spec.topology.dc[0].nodesPerRacks");
}

const BASE_NAME: &str = "cassandra-e2e";

fn base() -> Value {
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "CassandraCluster",
        "metadata": {"name": BASE_NAME},
        "spec": {"nodesPerRacks": 2, "service": {"annotations": {DNS_ZONE_ANNOTATION: "my.zone.dns.net."}}},
    })
}

fn site_override(dc: &str, racks: &[&str], zone: Option<&str>) -> Value {
    let mut o = json!({"spec": {"topology": {"dc": [{"name": dc, "rack": racks.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()}]}}});
    if let Some(z) = zone {
        o["spec"]["service"] = json!({"annotations": {DNS_ZONE_ANNOTATION: z}});
    }
    o
}

fn desired(base: &Value, site: &str, over: &Value) -> DesiredCluster {
    desired_for_site(base, Some(over), site, "ns", "mc").expect("valid")
}

fn federation(base: &Value, sites: &[(&str, Value)]) -> Result<Vec<String>, SeedError> {
    let desired: Vec<DesiredCluster> = sites.iter().map(|(s, o)| desired(base, s, o)).collect();
    let clusters: Vec<SiteCluster<'_>> = sites
        .iter()
        .zip(&desired)
        .map(|((site, over), d)| SiteCluster {
            site,
            desired: d,
            override_: Some(over),
        })
        .collect();
    federation_seeds(base, &clusters)
}

#[test]
fn federation_list_is_each_site_in_its_zone_in_rollout_order() {
    let sites = [
        (
            "site-b",
            site_override("dc2", &["rack4"], Some("b.example.com.")),
        ),
        ("site-a", site_override("dc1", &["rack1", "rack2"], None)),
        (
            "site-c",
            site_override("dc3", &["r1", "r2", "r3", "r4"], Some("c.example.com")),
        ),
    ];
    let list = federation(&base(), &sites).unwrap();
    assert_eq!(
        list,
        [
            "cassandra-e2e-dc2-rack4-0.b.example.com",
            "cassandra-e2e-dc2-rack4-1.b.example.com",
            "cassandra-e2e-dc1-rack1-0.my.zone.dns.net",
            "cassandra-e2e-dc1-rack1-1.my.zone.dns.net",
            "cassandra-e2e-dc1-rack2-0.my.zone.dns.net",
            "cassandra-e2e-dc3-r1-0.c.example.com",
            "cassandra-e2e-dc3-r2-0.c.example.com",
            "cassandra-e2e-dc3-r3-0.c.example.com",
        ]
    );
    // A site removed: its seeds go, the others' stay in order.
    let list = federation(&base(), &sites[..2]).unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|s| !s.contains("dc3")), "{list:?}");
}

#[test]
fn federation_list_refuses_manual_seeds_and_missing_zones_naming_the_field() {
    let mut manual = base();
    manual["status"] = json!({"seedlist": ["x.example.com"]});
    let sites = [("site-a", site_override("dc1", &["rack1"], None))];
    let e = federation(&manual, &sites).unwrap_err();
    assert_eq!(e, SeedError::ManualSeeds);
    let text = e.to_string();
    assert!(
        text.contains("spec.autoSeedList") && text.contains("spec.base.status.seedlist"),
        "{text}"
    );

    let mut no_zone = base();
    no_zone["spec"].as_object_mut().unwrap().remove("service");
    let sites = [
        (
            "site-a",
            site_override("dc1", &["rack1"], Some("a.example.com")),
        ),
        ("site-b", site_override("dc2", &["rack1"], None)),
    ];
    let text = federation(&no_zone, &sites).unwrap_err().to_string();
    assert!(
        text.starts_with("site site-b: ")
            && text.contains(DNS_ZONE_ANNOTATION)
            && text.contains("spec.override.site-b.spec.service.annotations"),
        "{text}"
    );

    let sites = [("site-a", site_override("dc_1", &["rack1"], None))];
    let text = federation(&base(), &sites).unwrap_err().to_string();
    assert!(
        text.starts_with("spec.override.site-a.spec.topology.dc[0].rack[0].name "),
        "{text}"
    );
}

#[test]
fn new_seed_list_changes_the_hash_and_the_same_list_keeps_it() {
    let over = site_override("dc1", &["rack1"], None);
    let mut a = desired(&base(), "site-a", &over);
    let plain = a.hash.clone();
    set_seed_list(&mut a, &["s1.example.com".into()]);
    let first = a.hash.clone();
    assert_ne!(first, plain);
    assert_eq!(seed_list_of(&a.object), ["s1.example.com"]);
    assert_eq!(
        a.object["metadata"]["annotations"][SPEC_HASH_ANNOTATION],
        first.as_str()
    );
    // Idempotent: the same list again is the same desired object.
    set_seed_list(&mut a, &["s1.example.com".into()]);
    assert_eq!(a.hash, first);
    set_seed_list(&mut a, &["s1.example.com".into(), "s2.example.com".into()]);
    assert_ne!(a.hash, first);
    // The same as a list written by hand in base: one hash for one object.
    let mut manual = base();
    manual["status"] = json!({"seedlist": ["s1.example.com"]});
    let by_hand = desired(&manual, "site-a", &over);
    let mut computed = desired(&base(), "site-a", &over);
    set_seed_list(&mut computed, &["s1.example.com".into()]);
    assert_eq!(computed.hash, by_hand.hash);
    assert_eq!(computed.object, by_hand.object);
}
