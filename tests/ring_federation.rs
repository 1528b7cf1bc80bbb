//! `multi-casskop ring` (the real binary) against three kubesim clusters answering `nodetool
//! status` through pod exec: a healthy ring passes; a node DN, a DC missing from one site's view
//! and an unreachable site each fail it, naming the node, DC or site.

mod support;

use serde_json::Value;
use support::status::*;

async fn healthy() -> (Fed, Vec<Vec<String>>) {
    let fed = start().await;
    let mut pods = vec![];
    for i in 0..3 {
        pods.push(site_running(&fed, i).await);
    }
    (fed, pods)
}

#[tokio::test]
async fn healthy_ring_passes() {
    let (fed, pods) = healthy().await;
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ring OK: 3 DCs, 5 nodes, all UN from every site's point of view (k8s-cluster1, k8s-cluster2, k8s-cluster3)"), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("DC ")).unwrap();
    assert!(
        header.contains("FROM k8s-cluster1")
            && header.contains("FROM k8s-cluster3")
            && header.contains("LOAD")
            && header.contains("OWNS")
    );
    // One row per node, named after its pod, UN from all three sites.
    for p in pods.iter().flatten() {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(p.as_str()))
            .unwrap_or_else(|| panic!("no row for {p}"));
        assert_eq!(row.matches(" UN").count(), 3, "{row}");
        assert!(row.contains("KiB"), "{row}");
    }
    let (out, stdout, _) = run(&fed, &["ring", MC, "-o", "json"]).await;
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["views"].as_array().unwrap().len(), 3);
    assert_eq!(v["views"][2]["datacenters"].as_array().unwrap().len(), 3);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 5);
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn down_node_fails_naming_the_node_and_each_point_of_view() {
    let (fed, pods) = healthy().await;
    // The first pod of k8s-cluster2 is down: nodetool cannot run in it, ring uses the next pod.
    let down = &pods[1][0];
    fed.sim
        .cluster("k8s-cluster2")
        .ring_faults()
        .set_node_down(down);
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("ring NOT OK (3 problems)"), "{stdout}");
    for site in SITES {
        assert!(
            stdout.contains(&format!("from {site}'s point of view")),
            "{site}: {stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(
            "node {down} (10.21.1.1, DC dc2, rack rack1) is DN, not UN"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "k8s-cluster2: nodetool status in pod {}",
            pods[1][1]
        )),
        "{stdout}"
    );
    let row = stdout.lines().find(|l| l.contains(down.as_str())).unwrap();
    assert_eq!(row.matches(" DN").count(), 3, "{row}");
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn dc_missing_from_one_sites_view_fails_naming_the_dc_and_the_site() {
    let (fed, _) = healthy().await;
    fed.sim.cluster("k8s-cluster3").ring_faults().hide_dc("dc1");
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("ring NOT OK (1 problems)"), "{stdout}");
    assert!(stdout.contains("from k8s-cluster3's point of view (pod cassandra-3dc-dc3-rack1-0): DC dc1 (site k8s-cluster1) is missing"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.contains("cassandra-3dc-dc1-rack1-0"))
        .unwrap();
    assert!(row.trim_end().ends_with("missing"), "{row}");
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn unreachable_site_is_named() {
    let (fed, _) = healthy().await;
    fed.sim
        .cluster("k8s-cluster3")
        .faults()
        .set_unreachable(true);
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("ring NOT OK (1 problems)"), "{stdout}");
    let problem = stdout.lines().find(|l| l.starts_with("  - ")).unwrap();
    assert!(
        problem.starts_with(
            "  - site k8s-cluster3: unreachable: site k8s-cluster3: reading CassandraCluster"
        ),
        "{problem}"
    );
    assert!(problem.contains("refused"), "{problem}");
    // The two reachable sites still see dc3's node (the ring itself is intact).
    let row = stdout
        .lines()
        .find(|l| l.contains("cassandra-3dc-dc3-rack1-0"))
        .unwrap();
    assert_eq!(row.matches(" UN").count(), 2, "{row}");
    assert!(row.trim_end().ends_with('?'), "{row}");
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn site_not_running_yet_is_missing_from_the_others() {
    let (fed, _) = healthy().await;
    let c2 = fed.sim.cluster("k8s-cluster2").client().await;
    set_cc_status(&c2, NS, MC, ("Pending", "UpdateDockerImage", "Ongoing")).await;
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("from k8s-cluster1's point of view (pod cassandra-3dc-dc1-rack1-0): DC dc2 (site k8s-cluster2) is missing"), "{stdout}");
    assert!(stdout.contains("from k8s-cluster3's point of view (pod cassandra-3dc-dc3-rack1-0): DC dc2 (site k8s-cluster2) is missing"), "{stdout}");
    assert!(
        !stdout.contains("from k8s-cluster2's point of view"),
        "{stdout}"
    );
    fed.sim.shutdown().await;
}

/// The same checks on pods the simulated CassKop created (with its own pod IPs and status).
#[tokio::test]
async fn ring_and_status_pass_on_pods_the_simulated_casskop_created() {
    let fed = start_with_casskop().await;
    for i in 0..3 {
        create_site_cluster(&fed, i).await;
        wait_running(&fed, i).await;
    }
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ring OK: 3 DCs, 5 nodes"), "{stdout}");
    let (out, stdout, _) = run(&fed, &["status", MC]).await;
    assert!(out.status.success());
    for (i, s) in SITES.iter().enumerate() {
        let l = line_of(&stdout, s);
        let want = if i == 2 { "1/1" } else { "2/2" };
        assert!(
            l.contains("Running")
                && l.contains("Initializing")
                && l.contains("Done")
                && l.contains(want),
            "{l}"
        );
    }
    fed.sim
        .cluster("k8s-cluster3")
        .ring_faults()
        .set_node_down("cassandra-3dc-dc3-rack1-0");
    let (out, stdout, _) = run(&fed, &["ring", MC]).await;
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("from k8s-cluster1's point of view (pod cassandra-3dc-dc1-rack1-0): node cassandra-3dc-dc3-rack1-0"), "{stdout}");
    // The only pod of k8s-cluster3 is the down node: nodetool cannot run there.
    assert!(
        stdout.contains("site k8s-cluster3: pod cassandra-3dc-dc3-rack1-0: nodetool status failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Failed to connect to '127.0.0.1:7199'"),
        "{stdout}"
    );
    fed.sim.shutdown().await;
}
