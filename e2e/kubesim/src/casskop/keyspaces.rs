//! CassKop's question before it scales a DC to 0 — which non-local keyspaces still keep replicas in that DC — asked of a Cassandra node through pod exec (`cqlsh -e "DESCRIBE KEYSPACES"`, then `nodetool describering` per keyspace), as CassKop asks Jolokia.
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

/// How long one exec may take before the node counts as not answering.
const EXEC_TIMEOUT: Duration = Duration::from_secs(20);

/// What a command printed, and whether it exited 0.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(pods: &Api<Pod>, pod: &str, cmd: Vec<&str>) -> anyhow::Result<Ran> {
    let what = cmd.join(" ");
    let go = async {
        let ap = AttachParams::default()
            .container("cassandra")
            .stdout(true)
            .stderr(true);
        let mut a = pods.exec(pod, cmd, &ap).await?;
        let (mut so, mut se) = (
            a.stdout().context("no stdout stream")?,
            a.stderr().context("no stderr stream")?,
        );
        let status = a.take_status().context("no status stream")?;
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (r1, r2) = tokio::join!(
            so.read_to_string(&mut stdout),
            se.read_to_string(&mut stderr)
        );
        r1.and(r2)?;
        let st = status.await;
        let _ = a.join().await;
        let ok = st.is_none_or(|s| s.status.as_deref() == Some("Success"));
        anyhow::Ok(Ran { ok, stdout, stderr })
    };
    tokio::time::timeout(EXEC_TIMEOUT, go)
        .await
        .with_context(|| format!("`{what}` in pod {pod} did not answer"))?
        .with_context(|| format!("running `{what}` in pod {pod}"))
}

/// The keyspaces (not node-local) with replicas in `dc`, as node `pod` sees the ring.
pub async fn with_data_in_dc(pods: &Api<Pod>, pod: &str, dc: &str) -> anyhow::Result<Vec<String>> {
    let listed = run(pods, pod, vec!["cqlsh", "-e", "DESCRIBE KEYSPACES"]).await?;
    if !listed.ok {
        bail!("cqlsh in pod {pod}: {}", listed.stderr.trim());
    }
    let mut with_data = vec![];
    let marker = format!("datacenter:{dc},");
    for ks in listed.stdout.split_whitespace() {
        let ring = run(pods, pod, vec!["nodetool", "describering", ks]).await?;
        if !ring.ok {
            // Node-local keyspaces have no ring: not replicated anywhere.
            if ring.stderr.contains("There is no ring") {
                continue;
            }
            bail!(
                "nodetool describering {ks} in pod {pod}: {}",
                ring.stderr.trim()
            );
        }
        if ring.stdout.contains(&marker) {
            with_data.push(ks.to_owned());
        }
    }
    Ok(with_data)
}
