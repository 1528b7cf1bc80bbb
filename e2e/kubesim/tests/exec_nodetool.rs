//! Pod exec over WebSocket against kubesim: kube-rs `Api::<Pod>::exec` and real `kubectl exec`, `nodetool status` built from the Sim-wide ring, ring faults, RBAC, exit codes.
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use kubesim::fixtures::{self, Dc, seed_cluster, set_cc_status};
use kubesim::kubectl::Kubectl;
use tokio::io::AsyncReadExt;

const NS: &str = "cassandra";
const CC: &str = "cassandra-demo";

struct Exec {
    stdout: String,
    stderr: String,
    status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
}

async fn exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    cmd: &[&str],
) -> Result<Exec, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut a = pods
        .exec(pod, cmd.to_vec(), &AttachParams::default().stderr(true))
        .await?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut so = a.stdout().expect("stdout");
    let mut se = a.stderr().expect("stderr");
    let status = a.take_status().expect("status");
    let (r1, r2) = tokio::join!(
        so.read_to_string(&mut stdout),
        se.read_to_string(&mut stderr)
    );
    r1.expect("stdout read");
    r2.expect("stderr read");
    let status = status.await;
    a.join().await.expect("join");
    Ok(Exec {
        stdout,
        stderr,
        status,
    })
}

/// Three clusters, one DC each (dc1: 2 racks x 1, dc2: 2 racks x 1, dc3: 1 rack x 2).
async fn three_sites() -> (kubesim::Sim, Vec<Vec<String>>) {
    let sim = kubesim::Sim::start(&["k1", "k2", "k3"], Default::default())
        .await
        .unwrap();
    let mut pods = vec![];
    let topo: [(&str, &[&str], u32); 3] = [
        ("dc1", &["rack1", "rack2"], 1),
        ("dc2", &["rack1", "rack2"], 1),
        ("dc3", &["rack1"], 2),
    ];
    for (i, (dc, racks, nodes)) in topo.iter().enumerate() {
        let c = sim.clusters()[i].client().await;
        let p = seed_cluster(
            &c,
            NS,
            CC,
            &[Dc {
                name: dc,
                racks,
                nodes: *nodes,
            }],
            ("Running", "Initializing", "Done"),
            10 + i as u8,
            true,
        )
        .await;
        pods.push(p);
    }
    (sim, pods)
}

fn dc_lines<'a>(out: &'a str, dc: &str) -> Vec<&'a str> {
    let mut lines = out
        .lines()
        .skip_while(|l| *l != format!("Datacenter: {dc}"))
        .skip(1);
    let mut v = vec![];
    for l in lines.by_ref() {
        if l.is_empty() || l.starts_with("Datacenter:") {
            break;
        }
        if l.starts_with("UN ") || l.starts_with("DN ") {
            v.push(l);
        }
    }
    v
}

#[tokio::test]
async fn nodetool_status_spans_every_running_site() {
    let (sim, pods) = three_sites().await;
    let c2 = sim.cluster("k2").client().await;
    let out = exec(&c2, NS, &pods[1][0], &["nodetool", "status"])
        .await
        .unwrap();
    println!("{}", out.stdout);
    assert_eq!(
        out.status.as_ref().and_then(|s| s.status.as_deref()),
        Some("Success")
    );
    assert_eq!(out.stderr, "");
    for dc in ["dc1", "dc2", "dc3"] {
        let lines = dc_lines(&out.stdout, dc);
        assert_eq!(lines.len(), 2, "{dc}: {lines:?}");
        assert!(lines.iter().all(|l| l.starts_with("UN  ")), "{lines:?}");
    }
    assert!(
        out.stdout
            .contains("|/ State=Normal/Leaving/Joining/Moving")
    );
    // The address column is as wide as the longest address ("10.10.1.1": 9).
    assert!(out.stdout.contains("--  Address    Load       Tokens       Owns (effective)  Host ID                               Rack\n"));
    assert!(dc_lines(&out.stdout, "dc1")[0].contains("10.10.1.1"));
    assert!(dc_lines(&out.stdout, "dc3")[1].ends_with("rack1"));
    // `-h localhost` and `sh -c` forms answer the same ring.
    let out2 = exec(
        &c2,
        NS,
        &pods[1][1],
        &["nodetool", "-h", "localhost", "status"],
    )
    .await
    .unwrap();
    assert_eq!(out2.stdout, out.stdout);
    let out3 = exec(&c2, NS, &pods[1][1], &["sh", "-c", "nodetool status"])
        .await
        .unwrap();
    assert_eq!(out3.stdout, out.stdout);
    sim.shutdown().await;
}

#[tokio::test]
async fn only_running_cassandraclusters_of_the_same_name_join() {
    let (sim, pods) = three_sites().await;
    let c1 = sim.cluster("k1").client().await;
    let c3 = sim.cluster("k3").client().await;
    // k3's cluster goes back to Pending: other sites no longer see dc3, k3's own pods still see themselves.
    set_cc_status(&c3, NS, CC, ("Pending", "UpdateDockerImage", "Ongoing")).await;
    // Another cassandra cluster name in k2 is a different ring.
    let c2 = sim.cluster("k2").client().await;
    let other = seed_cluster(
        &c2,
        NS,
        "other-ring",
        &[Dc {
            name: "dcx",
            racks: &["rack1"],
            nodes: 1,
        }],
        ("Running", "Initializing", "Done"),
        40,
        true,
    )
    .await;
    let out = exec(&c1, NS, &pods[0][0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    assert!(
        out.contains("Datacenter: dc1") && out.contains("Datacenter: dc2"),
        "{out}"
    );
    assert!(!out.contains("Datacenter: dc3"), "{out}");
    assert!(!out.contains("dcx"), "{out}");
    let own = exec(&c3, NS, &pods[2][0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    assert!(own.contains("Datacenter: dc3"), "{own}");
    let lonely = exec(&c2, NS, &other[0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    assert!(lonely.starts_with("Datacenter: dcx\n"), "{lonely}");
    assert_eq!(lonely.matches("Datacenter:").count(), 1, "{lonely}");
    sim.shutdown().await;
}

#[tokio::test]
async fn ring_faults_node_down_and_hidden_dc() {
    let (sim, pods) = three_sites().await;
    sim.cluster("k2").ring_faults().set_node_down(&pods[1][1]);
    sim.cluster("k3").ring_faults().hide_dc("dc1");
    let c1 = sim.cluster("k1").client().await;
    let c3 = sim.cluster("k3").client().await;
    let from1 = exec(&c1, NS, &pods[0][0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    let dc2 = dc_lines(&from1, "dc2");
    assert!(
        dc2[0].starts_with("UN ") && dc2[1].starts_with("DN "),
        "{from1}"
    );
    let from3 = exec(&c3, NS, &pods[2][0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    assert!(!from3.contains("Datacenter: dc1"), "{from3}");
    assert!(from3.contains("Datacenter: dc2"), "{from3}");
    // nodetool inside the down node cannot connect.
    let c2 = sim.cluster("k2").client().await;
    let down = exec(&c2, NS, &pods[1][1], &["nodetool", "status"])
        .await
        .unwrap();
    assert!(
        down.stderr
            .contains("Failed to connect to '127.0.0.1:7199'"),
        "{}",
        down.stderr
    );
    let st = down.status.unwrap();
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(
        st.details.unwrap().causes.unwrap()[0].message.as_deref(),
        Some("1")
    );
    // Cleared: all UN again.
    sim.cluster("k2").ring_faults().clear();
    sim.cluster("k3").ring_faults().clear();
    let again = exec(&c3, NS, &pods[2][0], &["nodetool", "status"])
        .await
        .unwrap()
        .stdout;
    assert_eq!(again.matches("UN  ").count(), 6, "{again}");
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_commands_fail_with_exit_code_127() {
    let (sim, pods) = three_sites().await;
    let c1 = sim.cluster("k1").client().await;
    let out = exec(&c1, NS, &pods[0][0], &["psql", "-c", "select 1"])
        .await
        .unwrap();
    assert!(
        out.stderr.contains("psql: command not found"),
        "{}",
        out.stderr
    );
    let st = out.status.unwrap();
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &st.details.unwrap().causes.unwrap()[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("127"))
    );
    let bad = exec(&c1, NS, &pods[0][0], &["nodetool", "ring"])
        .await
        .unwrap();
    assert!(
        bad.stderr.contains("Found unexpected parameters: [ring]"),
        "{}",
        bad.stderr
    );
    let hn = exec(&c1, NS, &pods[0][0], &["hostname"]).await.unwrap();
    assert_eq!(hn.stdout.trim(), pods[0][0]);
    // A missing pod is a 404 before any upgrade.
    match exec(&c1, NS, "nope-0", &["nodetool", "status"]).await {
        Err(e) => assert!(
            e.to_string().contains("404") || e.to_string().contains("not found"),
            "{e}"
        ),
        Ok(_) => panic!("exec into a missing pod succeeded"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn exec_needs_create_on_pods_exec() {
    let (sim, pods) = three_sites().await;
    let k1 = sim.cluster("k1");
    let admin = k1.client().await;
    let token = k1.issue_token(NS, "viewer", None);
    let viewer = k1.client_with_token(&token).await.unwrap();
    // get on pods/exec only: a WebSocket exec (GET) still needs create.
    let rbac: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        NS,
        &kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::Role>(&()),
    );
    let role = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "exec-get", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get"]}]});
    rbac.create(&Default::default(), &serde_json::from_value(role).unwrap())
        .await
        .unwrap();
    let rbs: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(admin.clone(), NS);
    let rb = serde_json::json!({"metadata": {"name": "exec-get", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exec-get"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": NS}]});
    rbs.create(&Default::default(), &serde_json::from_value(rb).unwrap())
        .await
        .unwrap();
    let denied = exec(&viewer, NS, &pods[0][0], &["nodetool", "status"]).await;
    let msg = denied
        .err()
        .expect("exec without create must be refused")
        .to_string();
    assert!(
        msg.contains("403") || msg.contains("Forbidden") || msg.contains("forbidden"),
        "{msg}"
    );
    // With create too, it works.
    let role2 = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "exec-get", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]}]});
    let mut r: kube::api::DynamicObject = serde_json::from_value(role2).unwrap();
    r.metadata.resource_version = rbac
        .get("exec-get")
        .await
        .unwrap()
        .metadata
        .resource_version;
    rbac.replace("exec-get", &Default::default(), &r)
        .await
        .unwrap();
    let ok = exec(&viewer, NS, &pods[0][0], &["nodetool", "status"])
        .await
        .unwrap();
    assert!(ok.stdout.contains("Datacenter: dc1"));
    sim.shutdown().await;
}

#[tokio::test]
async fn real_kubectl_exec_nodetool_status() {
    let (sim, pods) = three_sites().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let pod = pods[0][1].clone();
    let kubectl = Kubectl::new(&kc).context("k1").namespace(NS);
    let out = kubectl
        .run(&["exec", &pod, "--", "nodetool", "status"])
        .await;
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.success(), "kubectl exec failed: {stderr}");
    for dc in ["dc1", "dc2", "dc3"] {
        assert_eq!(dc_lines(stdout, dc).len(), 2, "{stdout}");
    }
    // A failing command: kubectl reports the exit code and exits with it.
    let out = kubectl
        .run(&["exec", &pod, "--", "nodetool", "bogus"])
        .await;
    let stderr = &out.stderr;
    assert_eq!(out.code, 1, "{stderr}");
    assert!(stderr.contains("Found unexpected parameters"), "{stderr}");
    sim.shutdown().await;
}

/// `kubectl exec POD -- nodetool status` on pods the simulated CassKop created.
#[tokio::test]
async fn kubectl_exec_on_simulated_casskop_pods() {
    use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
    let opts = kubesim::SimOptions {
        casskop: Some(kubesim::casskop::CasskopOptions {
            ready_after: std::time::Duration::from_millis(200),
            react_after: std::time::Duration::from_millis(100),
        }),
        ..Default::default()
    };
    let sim = kubesim::Sim::start(&["east", "west"], opts).await.unwrap();
    for (site, dc) in [("east", "dc1"), ("west", "dc2")] {
        let c = sim.cluster(site).client().await;
        fixtures::ensure_namespace(&c, NS).await;
        let ccs: Api<DynamicObject> = Api::namespaced_with(c.clone(), NS, &fixtures::cc_resource());
        let cc = serde_json::json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": CC, "namespace": NS},
            "spec": {"nodesPerRacks": 2, "topology": {"dc": [{"name": dc, "rack": [{"name": "rack1"}]}]}}});
        ccs.patch(CC, &PatchParams::apply("test").force(), &Patch::Apply(&cc))
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(c, NS);
        let mut ready = false;
        for _ in 0..400 {
            let running = ccs.get(CC).await.unwrap().data["status"]["phase"] == "Running";
            let n = pods
                .list(&ListParams::default().labels(&format!("cassandracluster={CC}")))
                .await
                .unwrap()
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if running && n == 2 {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(ready, "{site} never got Running with 2 pods");
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let out = Kubectl::new(&kc)
        .context("west")
        .namespace(NS)
        .run(&[
            "exec",
            &format!("{CC}-dc2-rack1-1"),
            "--",
            "nodetool",
            "-h",
            "localhost",
            "status",
        ])
        .await;
    let stdout = &out.stdout;
    assert!(out.success(), "{}", out.stderr);
    println!("{stdout}");
    assert_eq!(dc_lines(stdout, "dc1").len(), 2, "{stdout}");
    assert_eq!(dc_lines(stdout, "dc2").len(), 2, "{stdout}");
    assert_eq!(stdout.matches("UN  ").count(), 4, "{stdout}");
    sim.shutdown().await;
}
