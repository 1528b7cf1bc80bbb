//! `spec.autoSeedList`: three sites with different rack layouts get exactly CassKop's rule's
//! seed list, each seed in its site's DNS zone; a topology change moves the list site by site
//! (audit log); `multi-casskop status` shows each site's list; a hand-written list next to it,
//! or a site without a DNS zone, is refused naming the field, and nothing is written.

use std::process::Command;
use std::time::Duration;

use e2e::audit::{self, StepKind};
use e2e::{Env, NAMESPACE, binary, condition, controller_log_tail, eventually, sample};

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const MC: &str = "cassandra-auto";
const WAIT: Duration = Duration::from_secs(240);

/// What CassKop's rule gives for the sample: dc1 one rack of 2 (pods 0, 1), dc2 two racks of
/// 2 (pods 0, 1 of rack1, 0 of rack2), dc3 four racks (pod 0 of the first three).
const SAMPLE_SEEDS: [&str; 8] = [
    "cassandra-auto-dc1-rack1-0.dc1.example.com",
    "cassandra-auto-dc1-rack1-1.dc1.example.com",
    "cassandra-auto-dc2-rack1-0.dc2.example.com",
    "cassandra-auto-dc2-rack1-1.dc2.example.com",
    "cassandra-auto-dc2-rack2-0.dc2.example.com",
    "cassandra-auto-dc3-rack1-0.dc3.example.com",
    "cassandra-auto-dc3-rack2-0.dc3.example.com",
    "cassandra-auto-dc3-rack3-0.dc3.example.com",
];

/// After dc1 goes to three nodes: pods 0, 1, 2 of its one rack.
const CHANGED_SEEDS: [&str; 9] = [
    "cassandra-auto-dc1-rack1-0.dc1.example.com",
    "cassandra-auto-dc1-rack1-1.dc1.example.com",
    "cassandra-auto-dc1-rack1-2.dc1.example.com",
    "cassandra-auto-dc2-rack1-0.dc2.example.com",
    "cassandra-auto-dc2-rack1-1.dc2.example.com",
    "cassandra-auto-dc2-rack2-0.dc2.example.com",
    "cassandra-auto-dc3-rack1-0.dc3.example.com",
    "cassandra-auto-dc3-rack2-0.dc3.example.com",
    "cassandra-auto-dc3-rack3-0.dc3.example.com",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_seeds_follow_casskop_rule_on_every_site_and_move_site_by_site() -> anyhow::Result<()>
{
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    let log = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60));
    env.apply_yaml(&sample("multi-casskop-auto-seeds.yaml")?)?;
    env.settled_with_seeds(MC, &SITES, &SAMPLE_SEEDS, WAIT)
        .await
        .map_err(log)?;
    let controller = Env::sa_user("multi-casskop");
    let created = audit::analyze(&env.sim.audit(), &[controller.as_str()], MC, 0);
    assert!(created.violations.is_empty(), "{:?}", created.violations);
    assert_eq!(created.first_write_order, SITES);
    for site in SITES {
        let cc = env.get_cc(site, MC)?.expect("created");
        assert_eq!(cc["spec"]["autoUpdateSeedList"], false, "{site}");
    }
    let mc = env.get_mc(MC)?;
    for (i, site) in SITES.iter().enumerate() {
        let entry = &mc["status"]["sites"][i];
        assert_eq!(entry["name"], *site);
        assert_eq!(entry["seedList"], serde_json::json!(SAMPLE_SEEDS), "{site}");
    }

    // `multi-casskop status` shows each site's list.
    let out = status_cli(&env)?;
    println!("{out}");
    assert!(out.contains("SEED LIST"), "{out}");
    for site in SITES {
        let line = format!("  {site}: {}", SAMPLE_SEEDS.join(","));
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }

    // dc1 (the first site) scales to three nodes: its seeds change, so every site's list does,
    // and the new list reaches the sites in rollout order, one at a time: the others' own
    // topology is unchanged, their seed list alone is new.
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    env.kubectl(&[
        "patch",
        "multicasskop",
        MC,
        "--type=merge",
        "-p",
        r#"{"spec":{"override":{"k8s-cluster1":{"spec":{"topology":{"dc":[{"name":"dc1","nodesPerRacks":3,"rack":[{"name":"rack1"}]}]}}}}}}"#,
    ])?;
    env.settled_with_seeds(MC, &SITES, &CHANGED_SEEDS, WAIT)
        .await
        .map_err(log)?;
    let changed = audit::analyze(&env.sim.audit(), &[controller.as_str()], MC, from);
    println!("change steps: {:#?}", changed.steps);
    assert!(changed.violations.is_empty(), "{:?}", changed.violations);
    assert_eq!(changed.first_write_order, SITES, "site by site, in order");
    // Each site written (an apply may take two requests: see `create.rs`), then settled, and
    // only then the next site.
    let mut order: Vec<(String, &str)> = changed
        .steps
        .iter()
        .map(|s| {
            let kind = match s.kind {
                StepKind::Write { .. } => "write",
                StepKind::Settled => "settled",
                StepKind::Delete => "delete",
            };
            (s.site.clone(), kind)
        })
        .collect();
    order.dedup();
    let expected: Vec<(String, &str)> = SITES
        .iter()
        .flat_map(|s| [(s.to_string(), "write"), (s.to_string(), "settled")])
        .collect();
    assert_eq!(order, expected);
    for e in env
        .sim
        .audit()
        .iter()
        .filter(|e| e.seq >= from && e.user == controller && e.resource == "cassandraclusters")
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch"))
        .filter(|e| (200..300).contains(&e.code))
    {
        let written = e.object.as_ref().map(e2e::seed_list).unwrap_or_default();
        assert!(
            written == CHANGED_SEEDS || written == SAMPLE_SEEDS,
            "seq {} at {}: {written:?}",
            e.seq,
            e.cluster
        );
    }
    Ok(())
}

/// A hand-written list with `autoSeedList`, and a site without a DNS zone: `Valid=False`
/// naming the field, an `InvalidSpec` Event, and no CassandraCluster written anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_seeds_refuse_manual_seeds_and_sites_without_zone_writing_nothing()
-> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    let log = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60));
    let auto = sample("multi-casskop-auto-seeds.yaml")?;
    let manual = auto
        .replace("name: cassandra-auto\n", "name: auto-and-manual\n")
        .replace(
            "  override:\n",
            "    status:\n      seedlist:\n        - a.example.com\n  override:\n",
        );
    let no_zone = auto
        .replace("name: cassandra-auto\n", "name: auto-no-zone\n")
        .replace(
            "            external-dns.alpha.kubernetes.io/hostname: dc2.example.com.\n",
            "            team: dba\n",
        );
    env.apply_yaml(&manual)?;
    env.apply_yaml(&no_zone)?;
    let cases = [
        (
            "auto-and-manual",
            vec!["spec.autoSeedList", "spec.base.status.seedlist"],
        ),
        (
            "auto-no-zone",
            vec![
                "site k8s-cluster2",
                "external-dns.alpha.kubernetes.io/hostname",
                "spec.override.k8s-cluster2.spec.service.annotations",
            ],
        ),
    ];
    for (name, words) in &cases {
        let (_, reason, message) = eventually(&format!("{name} Valid=False"), WAIT, || async {
            let mc = env.get_mc(name)?;
            Ok(condition(&mc, "Valid").filter(|c| c.0 == "False"))
        })
        .await
        .map_err(log)?;
        assert_eq!(reason, "InvalidSpec");
        for w in words {
            assert!(message.contains(w), "{name}: {w:?} not in {message}");
        }
        let mc = env.get_mc(name)?;
        assert_eq!(mc["status"]["phase"], "Invalid", "{name}");
        let events = env.events_of(name)?;
        assert!(
            events
                .iter()
                .any(|(t, r, n)| t == "Warning" && r == "InvalidSpec" && n == &message),
            "{name}: {events:?}"
        );
        for site in SITES {
            assert!(env.get_cc(site, MC)?.is_none(), "{name}: nothing at {site}");
        }
    }
    let controller = Env::sa_user("multi-casskop");
    let writes: Vec<String> = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.user == controller && e.resource == "cassandraclusters")
        .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .map(|e| format!("{} {} {}", e.cluster, e.verb, e.name))
        .collect();
    assert!(writes.is_empty(), "no CassandraCluster write: {writes:?}");
    Ok(())
}

/// `multi-casskop status MC` through the kubeconfig contexts of the test clusters.
fn status_cli(env: &Env) -> anyhow::Result<String> {
    let out = Command::new(binary()?)
        .args(["status", MC, "--use-kubeconfig-contexts", "-n", NAMESPACE])
        .arg("--kubeconfig")
        .arg(&env.admin_kubeconfig)
        .args(["--context", SITES[0]])
        .arg(format!("-l{}", SITES[0]))
        .arg(format!("-r{}", SITES[1..].join(",")))
        .env_remove("RUST_LOG")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "status failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}
