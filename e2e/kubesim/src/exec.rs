//! Pod exec (`pods/exec`) over WebSocket, the Kubernetes remotecommand channel protocols v1–v5 as kubectl and kube-rs speak them, for the simulated pods; `nodetool` and `cqlsh` answered from the Sim-wide simulated Cassandra ring and its keyspaces, with ring faults (node down, DC hidden).
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Response, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::cql::{self, Keyspaces};
use crate::errors::ApiError;
use crate::http::{Body, full};
use crate::nodetool::{self, Command, Ownership, RingNode};
use crate::rbac::{self, Decision, RequestAttributes, UserInfo};
use crate::resources::ResKey;
use crate::store::Store;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// The remotecommand subprotocols served, best first (v5 adds the CLOSE signal, v4 a JSON
/// Status on channel 3, v1–v3 a plain error text on channel 3).
const PROTOCOLS: [(&str, u8); 5] = [
    ("v5.channel.k8s.io", 5),
    ("v4.channel.k8s.io", 4),
    ("v3.channel.k8s.io", 3),
    ("v2.channel.k8s.io", 2),
    ("channel.k8s.io", 1),
];

/// What pod exec sees of one cluster: its name, its objects, its ring faults, and the exec
/// contexts of every cluster of the Sim (the Cassandra ring spans them). Exec is handed this
/// narrow view rather than the whole cluster, so it depends on the store only.
#[derive(Debug)]
pub struct ExecContext {
    name: String,
    store: Arc<Store>,
    peers: OnceLock<Vec<Weak<ExecContext>>>,
    pub ring_faults: RingFaults,
    /// Keyspaces of each ring (by CassandraCluster name), kept by the first cluster of the Sim
    /// for all of them, with the uids of the CassandraClusters that formed that ring: a ring
    /// whose clusters are all gone starts afresh.
    keyspaces: Mutex<HashMap<String, (BTreeSet<String>, Keyspaces)>>,
}

impl ExecContext {
    pub fn new(name: &str, store: Arc<Store>) -> ExecContext {
        ExecContext {
            name: name.to_string(),
            store,
            peers: OnceLock::new(),
            ring_faults: RingFaults::default(),
            keyspaces: Mutex::default(),
        }
    }
    /// Set once by `Sim::start`: all clusters of the Sim, this one included.
    pub fn set_peers(&self, peers: Vec<Weak<ExecContext>>) {
        let _ = self.peers.set(peers);
    }
    fn peers(&self) -> Vec<Arc<ExecContext>> {
        self.peers
            .get()
            .map(|p| p.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }
}

/// Faults of the simulated Cassandra ring, per cluster.
#[derive(Debug, Default)]
pub struct RingFaults {
    state: Mutex<RingFaultState>,
}

#[derive(Debug, Default, Clone)]
struct RingFaultState {
    /// Pods of this cluster whose Cassandra node is down: every view shows them `DN`, and
    /// `nodetool` run inside them cannot connect.
    down: BTreeSet<String>,
    /// DCs that `nodetool status` run in this cluster's pods does not show.
    hidden_dcs: BTreeSet<String>,
}

impl RingFaults {
    fn with<R>(&self, f: impl FnOnce(&mut RingFaultState) -> R) -> R {
        f(&mut self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
    /// The Cassandra node of pod `pod` (of this cluster) is down.
    pub fn set_node_down(&self, pod: &str) {
        self.with(|s| s.down.insert(pod.to_string()));
    }
    pub fn set_node_up(&self, pod: &str) {
        self.with(|s| s.down.remove(pod));
    }
    /// DC `dc` is missing from the ring as seen from this cluster's pods.
    pub fn hide_dc(&self, dc: &str) {
        self.with(|s| s.hidden_dcs.insert(dc.to_string()));
    }
    pub fn show_dc(&self, dc: &str) {
        self.with(|s| s.hidden_dcs.remove(dc));
    }
    pub fn nodes_down(&self) -> Vec<String> {
        self.with(|s| s.down.iter().cloned().collect())
    }
    pub fn hidden_dcs(&self) -> Vec<String> {
        self.with(|s| s.hidden_dcs.iter().cloned().collect())
    }
    pub fn clear(&self) {
        self.with(|s| *s = RingFaultState::default());
    }
    fn is_down(&self, pod: &str) -> bool {
        self.with(|s| s.down.contains(pod))
    }
    /// Admin endpoint JSON: `"nodesDown": ["pod", ...]` and `"hiddenDcs": ["dc2"]` replace the
    /// current sets; absent keys leave them as they are.
    pub fn apply_json(&self, v: &Value) {
        let set = |k: &str| {
            v[k].as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect::<BTreeSet<_>>()
            })
        };
        let (down, hidden) = (set("nodesDown"), set("hiddenDcs"));
        self.with(|s| {
            if let Some(d) = down {
                s.down = d;
            }
            if let Some(h) = hidden {
                s.hidden_dcs = h;
            }
        });
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Query parameters of an exec request (`command` repeats).
#[derive(Debug, Default)]
struct ExecParams {
    command: Vec<String>,
    container: Option<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn parse_params(uri: &http::Uri) -> ExecParams {
    let mut p = ExecParams::default();
    let truthy = |v: &str| matches!(v, "true" | "1" | "True" | "TRUE");
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "command" => p.command.push(v.into_owned()),
            "container" if !v.is_empty() => p.container = Some(v.into_owned()),
            "stdin" => p.stdin = truthy(&v),
            "stdout" => p.stdout = truthy(&v),
            "stderr" => p.stderr = truthy(&v),
            "tty" => p.tty = truthy(&v),
            _ => {}
        }
    }
    p
}

fn header_str(parts: &http::request::Parts, name: header::HeaderName) -> &str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Handles `GET|POST /api/v1/namespaces/NS/pods/NAME/exec` (already authenticated, and authorized
/// for the request's own verb by the caller).
pub async fn exec(
    c: &ExecContext,
    mut parts: http::request::Parts,
    ns: &str,
    name: &str,
    user: &UserInfo,
) -> Result<Response<Body>, ApiError> {
    // Like kube-apiserver >= 1.30: a WebSocket exec arrives as GET, yet needs `create` too.
    if parts.method == Method::GET && !user.groups.iter().any(|g| g == "system:masters") {
        let attrs = RequestAttributes {
            verb: "create".into(),
            api_group: String::new(),
            resource: "pods".into(),
            subresource: "exec".into(),
            namespace: ns.to_string(),
            name: name.to_string(),
            path: parts.uri.path().to_string(),
            resource_request: true,
        };
        let snapshot = c.store.lock().rbac.clone();
        if rbac::authorize(user, &attrs, &snapshot) == Decision::Deny {
            return Err(ApiError::forbidden(
                rbac::forbidden_message(user, &attrs),
                "",
                "pods",
                name,
            ));
        }
    }
    let mut p = parse_params(&parts.uri);
    if p.command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    if !p.stdin && !p.stdout && !p.stderr {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if p.tty {
        // Like the kubelet: with a TTY there is no separate stderr stream.
        p.stderr = false;
    }
    let pod = c
        .store
        .lock()
        .get(&pods_key(), ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = match &p.container {
        Some(want) if !containers.contains(&want.as_str()) => {
            return Err(ApiError::bad_request(format!(
                "container {want} is not valid for pod {name}"
            )));
        }
        Some(want) => want.clone(),
        None => containers
            .first()
            .map(ToString::to_string)
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers")))?,
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    if phase != "Running" || !pod["metadata"]["deletionTimestamp"].is_null() {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{container}\"): pod {name} is {phase} in cluster {}",
            c.name
        )));
    }

    let upgrade = header_str(&parts, header::UPGRADE).to_ascii_lowercase();
    if upgrade != "websocket" {
        return Err(ApiError::bad_request(format!(
            "kubesim ({}): pods/exec is served over WebSocket only (Upgrade: websocket, subprotocol v4/v5.channel.k8s.io); got upgrade {:?}",
            c.name, upgrade
        )));
    }
    let key = header_str(&parts, header::SEC_WEBSOCKET_KEY).to_string();
    if key.is_empty() {
        return Err(ApiError::bad_request(
            "websocket upgrade without Sec-WebSocket-Key",
        ));
    }
    let offered: Vec<String> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect();
    let chosen = if offered.is_empty() {
        None
    } else {
        let best = PROTOCOLS.iter().find(|(name, _)| offered.iter().any(|o| o == name)).ok_or_else(|| {
            ApiError::bad_request(format!("unable to upgrade: none of the offered subprotocols {offered:?} is supported (v1-v5.channel.k8s.io)"))
        })?;
        Some(*best)
    };
    let version = chosen.map(|(_, v)| v).unwrap_or(1);
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            ApiError::bad_request(
                "websocket upgrade needs HTTP/1.1 (this connection cannot be upgraded)",
            )
        })?;

    let outcome = run(c, &pod, &p.command);
    let session = Session {
        version,
        stdout: p.stdout || p.tty,
        stderr: p.stderr,
        tty: p.tty,
        command: p.command.clone(),
    };
    let cluster = c.name.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                if let Err(e) = session.serve(ws, outcome).await {
                    tracing::debug!("kubesim ({cluster}): exec session ended with {e}");
                }
            }
            Err(e) => tracing::debug!("kubesim ({cluster}): exec upgrade failed: {e}"),
        }
    });

    let mut resp = Response::new(full(""));
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    if let Some((name, _)) = chosen {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(name),
        );
    }
    Ok(resp)
}

struct Session {
    version: u8,
    stdout: bool,
    stderr: bool,
    tty: bool,
    command: Vec<String>,
}

impl Session {
    async fn serve<S>(
        self,
        mut ws: WebSocketStream<S>,
        out: Outcome,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let frame = |ch: u8, data: &[u8]| {
            let mut v = Vec::with_capacity(data.len() + 1);
            v.push(ch);
            v.extend_from_slice(data);
            Message::binary(v)
        };
        // Like kube-apiserver: an empty frame on the first writable channel says the stream is open.
        if self.stdout {
            ws.send(frame(STDOUT, &[])).await?;
        }
        let (stdout, stderr) = if self.tty {
            (
                format!("{}{}", out.stdout, out.stderr).replace('\n', "\r\n"),
                String::new(),
            )
        } else {
            (out.stdout, out.stderr)
        };
        if self.stdout && !stdout.is_empty() {
            ws.send(frame(STDOUT, stdout.as_bytes())).await?;
        }
        if self.stderr && !stderr.is_empty() {
            ws.send(frame(STDERR, stderr.as_bytes())).await?;
        }
        if self.version >= 4 {
            ws.send(frame(
                STATUS,
                status_json(&self.command, out.exit_code)
                    .to_string()
                    .as_bytes(),
            ))
            .await?;
        } else if out.exit_code != 0 {
            let msg = format!(
                "command terminated with non-zero exit code: exit status {}",
                out.exit_code
            );
            ws.send(frame(STATUS, msg.as_bytes())).await?;
        }
        // Code 1000: client-go takes only a normal closure as the end of the streams.
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await?;
        // Drain until the client answers the close (or goes away), ignoring stdin and CLOSE signals.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(m) = ws.next().await {
                if m.is_err() {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// The Status kube-apiserver sends on channel 3 (protocol v4 and later).
pub fn status_json(command: &[String], exit_code: i32) -> Value {
    if exit_code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {exit_code}", command.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
    })
}

fn pods_key() -> ResKey {
    ResKey {
        group: String::new(),
        plural: "pods".into(),
    }
}

fn cassandra_clusters_key() -> ResKey {
    ResKey {
        group: "db.orange.com".into(),
        plural: "cassandraclusters".into(),
    }
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

/// Runs `command` in `pod` of cluster `c`.
pub fn run(c: &ExecContext, pod: &Value, command: &[String]) -> Outcome {
    let ok = |stdout: String| Outcome {
        stdout,
        stderr: String::new(),
        exit_code: 0,
    };
    let fail = |stderr: String, exit_code: i32| Outcome {
        stdout: String::new(),
        stderr,
        exit_code,
    };
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let cassandra = label(pod, nodetool::LABEL_APP) == Some(nodetool::APP_VALUE)
        && label(pod, nodetool::LABEL_CLUSTER).is_some();
    match nodetool::parse_command(command) {
        Command::Hostname => ok(format!("{pod_name}\n")),
        Command::Echo(s) => ok(format!("{s}\n")),
        Command::True => ok(String::new()),
        Command::NotFound(prog) => fail(
            format!(
                "kubesim: {prog}: command not found in pod {pod_name} (cluster {}); simulated Cassandra pods answer `nodetool status|describering|version` and `cqlsh -e`\n",
                c.name
            ),
            127,
        ),
        _ if !cassandra => fail(
            format!(
                "kubesim: nodetool: command not found in pod {pod_name} (cluster {}): not a Cassandra pod\n",
                c.name
            ),
            127,
        ),
        _ if c.ring_faults.is_down(pod_name) => fail(nodetool::connection_refused(), 1),
        Command::NodetoolVersion => ok(nodetool::render_version()),
        Command::NodetoolUnknown(what) => fail(nodetool::unknown_subcommand(&what), 1),
        Command::NodetoolStatus => {
            let ring = ring_view(c, pod);
            let owns = with_keyspaces(c, pod, |ks| match cql::status_keyspace(ks) {
                Ok(k) => Ownership::Effective(cql::effective_ownership(&ks.0[k], &ring)),
                Err(note) => Ownership::Meaningless(note),
            });
            ok(nodetool::render_status_with(&ring, &owns))
        }
        Command::NodetoolStatusKeyspace(k) => {
            let ring = ring_view(c, pod);
            match with_keyspaces(c, pod, |ks| ks.0.get(&k).cloned()) {
                Some(r) => ok(nodetool::render_status_with(
                    &ring,
                    &Ownership::Effective(cql::effective_ownership(&r, &ring)),
                )),
                None => fail(
                    format!("nodetool: The keyspace {k}, does not exist\nSee 'nodetool help' or 'nodetool help <command>'.\n"),
                    1,
                ),
            }
        }
        Command::NodetoolDescribering(k) => {
            let ring = ring_view(c, pod);
            match with_keyspaces(c, pod, |ks| cql::describe_ring(ks, &k, &ring)) {
                Ok(out) => ok(out),
                Err(e) => fail(e, 1),
            }
        }
        Command::Cqlsh(None) => fail(
            "kubesim: cqlsh needs -e \"<statements>\" here (exec without a terminal cannot run an interactive shell)\n".into(),
            2,
        ),
        Command::Cqlsh(Some(script)) => match with_keyspaces(c, pod, |ks| ks.execute(&script)) {
            Ok(out) => ok(out),
            Err(e) => fail(format!("{}\n", e.0), 2),
        },
    }
}

/// Run `f` on the keyspaces of the ring `pod` belongs to (its CassandraCluster's name, Sim-wide).
fn with_keyspaces<R>(c: &ExecContext, pod: &Value, f: impl FnOnce(&mut Keyspaces) -> R) -> R {
    let cc_name = label(pod, nodetool::LABEL_CLUSTER)
        .unwrap_or("")
        .to_string();
    let mut peers = c.peers();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut uids = BTreeSet::new();
    let stores: Vec<Arc<Store>> = if peers.is_empty() {
        vec![c.store.clone()]
    } else {
        peers.iter().map(|p| p.store.clone()).collect()
    };
    for store in stores {
        let st = store.lock();
        for cc in st.range(&cassandra_clusters_key(), None, None) {
            if cc["metadata"]["name"].as_str() == Some(cc_name.as_str())
                && let Some(uid) = cc["metadata"]["uid"].as_str()
            {
                uids.insert(uid.to_string());
            }
        }
    }
    let holder = peers.first().map(Arc::as_ref).unwrap_or(c);
    let mut rings = holder
        .keyspaces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = rings
        .entry(cc_name)
        .or_insert_with(|| (BTreeSet::new(), Keyspaces::default()));
    if !entry.0.is_empty() && entry.0.is_disjoint(&uids) {
        *entry = (BTreeSet::new(), Keyspaces::default());
    }
    entry.0.extend(uids);
    f(&mut entry.1)
}

/// The ring as seen from `pod` (a Cassandra pod of cluster `c`): the Running Cassandra pods of
/// every cluster of the Sim whose CassandraCluster has the same name and is Running, plus the
/// pod's own CassandraCluster's pods (a node always sees its own DC); minus the DCs hidden
/// from `c`; nodes marked down in their own cluster are `DN`.
pub fn ring_view(c: &ExecContext, pod: &Value) -> Vec<RingNode> {
    let cc_name = label(pod, nodetool::LABEL_CLUSTER)
        .unwrap_or("")
        .to_string();
    let own_ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut peers = c.peers();
    if !peers.iter().any(|p| p.name == c.name) {
        // An exec context outside a Sim (peers never set) sees no ring.
        return vec![];
    }
    peers.sort_by_key(|p| p.name != c.name);
    let hidden = c.ring_faults.hidden_dcs();
    let mut nodes = vec![];
    for peer in peers {
        let own = peer.name == c.name;
        let pods: Vec<Arc<Value>> = {
            let st = peer.store.lock();
            let namespaces: BTreeSet<String> = st
                .range(&cassandra_clusters_key(), None, None)
                .into_iter()
                .filter(|cc| cc["metadata"]["name"].as_str() == Some(cc_name.as_str()))
                .filter_map(|cc| {
                    let ns = cc["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let running = cc["status"]["phase"].as_str() == Some("Running");
                    (running || (own && ns == own_ns)).then_some(ns)
                })
                .collect();
            namespaces
                .iter()
                .flat_map(|ns| st.range(&pods_key(), Some(ns), None))
                .collect()
        };
        for p in pods {
            if label(&p, nodetool::LABEL_APP) != Some(nodetool::APP_VALUE)
                || label(&p, nodetool::LABEL_CLUSTER) != Some(cc_name.as_str())
                || p["status"]["phase"].as_str() != Some("Running")
                || !p["metadata"]["deletionTimestamp"].is_null()
            {
                continue;
            }
            let dc = label(&p, nodetool::LABEL_DC).unwrap_or("dc1").to_string();
            if hidden.contains(&dc) {
                continue;
            }
            let name = p["metadata"]["name"].as_str().unwrap_or("");
            let uid = p["metadata"]["uid"].as_str().unwrap_or(name).to_string();
            nodes.push(RingNode {
                dc,
                rack: label(&p, nodetool::LABEL_RACK)
                    .unwrap_or("rack1")
                    .to_string(),
                address: p["status"]["podIP"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("?")
                    .to_string(),
                up: !peer.ring_faults.is_down(name),
                load_kib: nodetool::simulated_load_kib(&uid),
                tokens: 256,
                host_id: uid,
            });
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_faults_from_admin_json() {
        let f = RingFaults::default();
        f.set_node_down("a-0");
        f.apply_json(&json!({"hiddenDcs": ["dc2", "dc3"]}));
        assert_eq!(f.nodes_down(), vec!["a-0"]);
        assert_eq!(f.hidden_dcs(), vec!["dc2", "dc3"]);
        f.apply_json(&json!({"nodesDown": ["b-1"], "latencyMs": 5}));
        assert_eq!(f.nodes_down(), vec!["b-1"]);
        assert!(f.is_down("b-1") && !f.is_down("a-0"));
        f.clear();
        assert!(f.nodes_down().is_empty() && f.hidden_dcs().is_empty());
    }

    #[test]
    fn exit_status_is_shaped_like_kube_apiservers() {
        assert_eq!(
            status_json(&[], 0),
            json!({"metadata": {}, "status": "Success"})
        );
        let cmd = vec!["nodetool".to_string(), "ring".to_string()];
        let s = status_json(&cmd, 1);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "1"})
        );
        assert!(s["message"].as_str().unwrap().contains("[nodetool ring]"));
    }

    #[test]
    fn query_keeps_every_command_word() {
        let uri: http::Uri = "/api/v1/namespaces/ns/pods/p/exec?command=nodetool&command=-h&command=localhost&command=status&stdout=true&stderr=1&tty=false&container=cassandra"
            .parse()
            .unwrap();
        let p = parse_params(&uri);
        assert_eq!(p.command, vec!["nodetool", "-h", "localhost", "status"]);
        assert!(p.stdout && p.stderr && !p.stdin && !p.tty);
        assert_eq!(p.container.as_deref(), Some("cassandra"));
    }
}
