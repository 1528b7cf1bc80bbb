//! Pod exec subprotocol negotiation (v5 down to v1 `channel.k8s.io`), the channel-3 payload per version, refusals before the upgrade, and ring faults set through the admin endpoint.
use std::sync::Arc;

use futures::StreamExt;
use kubesim::fixtures::{Dc, seed_cluster};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

const NS: &str = "cassandra";

/// Opens a raw WebSocket exec with `protocols` offered; returns the chosen protocol and the
/// frames received (channel, payload), or the HTTP status of a refused upgrade.
async fn raw_exec(
    c: &kubesim::Cluster,
    pod: &str,
    query: &str,
    protocols: &str,
) -> Result<(Option<String>, Vec<(u8, String)>), u16> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = c.ca_pem();
    let der = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    use base64::Engine;
    roots
        .add(CertificateDer::from(
            base64::engine::general_purpose::STANDARD
                .decode(der)
                .unwrap(),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = c.url().trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let url = format!("wss://{addr}/api/v1/namespaces/{NS}/pods/{pod}/exec?{query}");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {}", c.admin_token())).unwrap(),
    );
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    let (mut ws, resp) = match tokio_tungstenite::client_async(req, tls).await {
        Ok(x) => x,
        Err(tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    };
    let chosen = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string());
    let mut frames = vec![];
    while let Some(m) = ws.next().await {
        match m.unwrap() {
            tungstenite::Message::Binary(b) if !b.is_empty() => {
                frames.push((b[0], String::from_utf8_lossy(&b[1..]).to_string()));
            }
            tungstenite::Message::Close(f) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1000), "normal closure");
                break;
            }
            _ => {}
        }
    }
    Ok((chosen, frames))
}

async fn one_site() -> (kubesim::Sim, String) {
    let sim = kubesim::Sim::start(&["k1"], Default::default())
        .await
        .unwrap();
    let client = sim.cluster("k1").client().await;
    let pods = seed_cluster(
        &client,
        NS,
        "ring",
        &[Dc {
            name: "dc1",
            racks: &["rack1"],
            nodes: 1,
        }],
        ("Running", "Initializing", "Done"),
        7,
        true,
    )
    .await;
    (sim, pods[0].clone())
}

fn joined(frames: &[(u8, String)], ch: u8) -> String {
    frames
        .iter()
        .filter(|(c, _)| *c == ch)
        .map(|(_, s)| s.as_str())
        .collect()
}

#[tokio::test]
async fn best_offered_subprotocol_wins_and_shapes_channel_3() {
    let (sim, pod) = one_site().await;
    let c = sim.cluster("k1");
    let q_ok = "command=nodetool&command=status&stdout=true&stderr=true";
    let q_fail = "command=nodetool&command=bogus&stdout=true&stderr=true";

    let (chosen, frames) = raw_exec(
        c,
        &pod,
        q_ok,
        "v4.channel.k8s.io, v5.channel.k8s.io, channel.k8s.io",
    )
    .await
    .unwrap();
    assert_eq!(chosen.as_deref(), Some("v5.channel.k8s.io"));
    assert!(joined(&frames, 1).starts_with("Datacenter: dc1\n"));
    assert_eq!(joined(&frames, 3), r#"{"metadata":{},"status":"Success"}"#);
    // Output comes before the status, which comes last.
    assert_eq!(frames.last().unwrap().0, 3);

    let (chosen, frames) = raw_exec(c, &pod, q_fail, "v4.channel.k8s.io")
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("v4.channel.k8s.io"));
    let st: serde_json::Value = serde_json::from_str(&joined(&frames, 3)).unwrap();
    assert_eq!(st["details"]["causes"][0]["message"], "1");
    assert!(joined(&frames, 2).contains("Found unexpected parameters: [bogus]"));

    // v1-v3: plain text on channel 3, and nothing there on success.
    let (chosen, frames) = raw_exec(c, &pod, q_fail, "v3.channel.k8s.io, v2.channel.k8s.io")
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("v3.channel.k8s.io"));
    assert_eq!(
        joined(&frames, 3),
        "command terminated with non-zero exit code: exit status 1"
    );
    let (chosen, frames) = raw_exec(c, &pod, q_ok, "channel.k8s.io").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("channel.k8s.io"));
    assert_eq!(joined(&frames, 3), "");
    assert!(joined(&frames, 1).contains("UN  10.7.1.1"));
    // No subprotocol offered: served as v1, no header.
    let (chosen, _) = raw_exec(c, &pod, q_ok, "").await.unwrap();
    assert_eq!(chosen, None);

    // Refused before any upgrade: unknown subprotocols, no command, no stream, missing pod.
    assert_eq!(
        raw_exec(c, &pod, q_ok, "base64.channel.k8s.io")
            .await
            .unwrap_err(),
        400
    );
    assert_eq!(
        raw_exec(c, &pod, "stdout=true", "v5.channel.k8s.io")
            .await
            .unwrap_err(),
        400
    );
    assert_eq!(
        raw_exec(c, &pod, "command=ls", "v5.channel.k8s.io")
            .await
            .unwrap_err(),
        400
    );
    assert_eq!(
        raw_exec(c, "missing-0", q_ok, "v5.channel.k8s.io")
            .await
            .unwrap_err(),
        404
    );
    assert_eq!(
        raw_exec(
            c,
            &pod,
            &format!("{q_ok}&container=nope"),
            "v5.channel.k8s.io"
        )
        .await
        .unwrap_err(),
        400
    );
    // The audit log records exec as pods/exec with the verb of the request (GET: get).
    let audit = sim.audit();
    let e = audit
        .iter()
        .find(|e| e.subresource == "exec" && e.code == 101)
        .expect("an audited exec");
    assert_eq!(
        (e.verb.as_str(), e.resource.as_str(), e.name.as_str()),
        ("get", "pods", pod.as_str())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn ring_faults_through_the_admin_endpoint() {
    let (sim, pod) = one_site().await;
    let (addr, task) = kubesim::admin::start(&sim, 0).await.unwrap();
    let put = |body: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "PUT /clusters/k1/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    };
    let q = "command=nodetool&command=status&stdout=true&stderr=true";
    put(r#"{"hiddenDcs": ["dc1"]}"#).await;
    assert_eq!(sim.cluster("k1").ring_faults().hidden_dcs(), vec!["dc1"]);
    let (_, frames) = raw_exec(sim.cluster("k1"), &pod, q, "v5.channel.k8s.io")
        .await
        .unwrap();
    assert_eq!(joined(&frames, 1), "", "dc1 hidden: nothing to show");
    put(r#"{"hiddenDcs": [], "nodesDown": ["ring-dc1-rack1-0"]}"#).await;
    let (_, frames) = raw_exec(sim.cluster("k1"), &pod, q, "v5.channel.k8s.io")
        .await
        .unwrap();
    assert!(
        joined(&frames, 2).contains("Failed to connect"),
        "{frames:?}"
    );
    task.abort();
    sim.shutdown().await;
}
