//! The manifests in samples/: each is a MultiCasskop naming the chart's sites, applies with
//! kubectl against kubesim (sites named k8s-cluster1..3, as in the samples) and rolls out; the
//! deleting sample cleans up.

use std::path::Path;
use std::time::Duration;

use e2e::audit::{self, running_done};
use e2e::{Env, controller_log_tail, eventually, workspace_root};
use serde_json::Value;

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const WAIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_applies_and_rolls_out() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually("the controller to be ready", WAIT, || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;

    let mut samples: Vec<_> = std::fs::read_dir(workspace_root().join("samples"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    samples.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    samples.sort();
    assert!(samples.len() >= 3, "three samples expected: {samples:?}");

    // (MultiCasskop, CassandraCluster, sites in rollout order, deletes its clusters)
    let mut applied = Vec::new();
    for path in &samples {
        let out = env.kubectl(&["apply", "-f", &path.display().to_string()])?;
        println!("{}: {}", path.display(), out.trim());
        let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path)?)?;
        let mc = doc["metadata"]["name"].as_str().unwrap().to_string();
        let cc = doc["spec"]["base"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let overrides = doc["spec"]["override"].as_object().unwrap();
        let sites: Vec<String> = SITES
            .iter()
            .filter(|s| overrides.contains_key(**s))
            .map(ToString::to_string)
            .collect();
        let deletes = doc["spec"]["deleteCassandraCluster"] == true;
        applied.push((mc, cc, sites, deletes));
    }

    for (mc, cc, sites, _) in &applied {
        env.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("multicasskop/{mc}"),
            "--timeout=240s",
        ])
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\ncontroller log:\n{}",
                controller_log_tail(&ctl.logs(), 40)
            )
        })?;
        for s in sites {
            let c = env
                .get_cc(s, cc)?
                .unwrap_or_else(|| panic!("{mc}: no CassandraCluster {cc} at {s}"));
            assert!(running_done(&c), "{mc} at {s}: {}", c["status"]);
        }
        for s in SITES.iter().filter(|s| !sites.iter().any(|x| x == *s)) {
            assert!(env.get_cc(s, cc)?.is_none(), "{mc}: {s} takes no part");
        }
        let r = audit::analyze(
            &env.sim.audit(),
            &[Env::sa_user("multi-casskop").as_str()],
            cc,
            0,
        );
        assert!(r.violations.is_empty(), "{mc}: {:?}", r.violations);
        assert_eq!(&r.first_write_order, sites, "{mc}: site order");
        println!("{mc}: rolled out to {sites:?}");
    }

    // Deleting each sample: the deleteCassandraCluster one removes its clusters, the others leave them.
    for (mc, _, _, _) in &applied {
        env.kubectl(&["delete", "multicasskop", mc, "--wait=false"])?;
    }
    for (mc, cc, sites, deletes) in &applied {
        eventually(&format!("{mc} deleted"), WAIT, || async {
            let gone = env
                .kubectl(&[
                    "get",
                    "multicasskop",
                    mc,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ])?
                .trim()
                .is_empty();
            Ok(gone.then_some(()))
        })
        .await?;
        for s in sites {
            let left = env.get_cc(s, cc)?;
            if *deletes {
                eventually(&format!("{cc} gone at {s}"), WAIT, || async {
                    Ok(env.get_cc(s, cc)?.is_none().then_some(()))
                })
                .await?;
            } else {
                assert!(left.is_some(), "{mc}: {cc} stays at {s}");
            }
        }
    }
    Ok(())
}

#[test]
fn samples_are_multicasskops_naming_chart_sites() {
    let dir = workspace_root().join("samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["apiVersion"], "db.orange.com/v2", "{}", path.display());
        assert_eq!(doc["kind"], "MultiCasskop", "{}", path.display());
        assert!(
            doc["spec"]["base"]["metadata"]["name"].is_string(),
            "{}",
            path.display()
        );
        for site in doc["spec"]["override"].as_object().unwrap().keys() {
            assert!(
                site.starts_with("k8s-cluster"),
                "{}: {site}",
                path.display()
            );
        }
    }
    assert!(
        seen >= 3,
        "three samples expected in {}",
        Path::new(&dir).display()
    );
}
