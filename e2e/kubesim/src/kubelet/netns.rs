//! Pod networking with iproute2: one network namespace per node and per pod, a veth pair between them with the pod's address, and listeners inside each pod for every simulated API server.
//!
//! Every address lives in namespaces kubesim creates (the node's and the pods'), never in the
//! host's: the host end of each veth is in the node namespace, so the pod addresses
//! (10.244.0.0/16, one /30 per pod) are reachable only from there. kubesim reaches a pod (probes)
//! from a thread that joined the node namespace. A pod reaches the API servers at the address its
//! kubeconfig names (https://127.0.0.1:PORT) because kubesim binds, from a thread that joined the
//! pod's namespace, a listener on the pod's own 127.0.0.1:PORT and relays each connection to the
//! real server: the same TLS, tokens and faults (an unreachable server refuses the relay's
//! connection; a frozen one stalls it), no NAT rule and nothing outside loopback.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

/// Runs `ip ARGS`; the error carries ip's own message.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether network namespaces can be made here (root and iproute2): the reason when not.
pub fn unavailable() -> Option<String> {
    let name = format!("kubesim-{}-probe", std::process::id());
    match ip(&["netns", "add", &name]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &name]);
            None
        }
        Err(e) => Some(format!(
            "network namespaces are unavailable (root and iproute2 are needed): {e:#}"
        )),
    }
}

/// Deletes the namespaces left by kubesim processes that are gone (killed before cleaning up).
pub fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("kubesim-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

static NODES: AtomicU32 = AtomicU32::new(0);

/// The node's namespace: the host ends of the pods' veth pairs.
#[derive(Debug)]
pub struct NodeNet {
    pub netns: String,
    next: AtomicU32,
}

/// One pod's namespace, its address and the node end of its veth pair.
#[derive(Debug, Clone)]
pub struct PodNet {
    pub netns: String,
    pub ip: Ipv4Addr,
    node_netns: String,
    veth: String,
}

impl NodeNet {
    pub fn create() -> anyhow::Result<NodeNet> {
        let netns = format!(
            "kubesim-{}-n{}",
            std::process::id(),
            NODES.fetch_add(1, Ordering::SeqCst)
        );
        ip(&["netns", "add", &netns])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        Ok(NodeNet {
            netns,
            next: AtomicU32::new(0),
        })
    }

    /// A new pod namespace with `eth0` at the next free /30 of 10.244.0.0/16.
    pub fn add_pod(&self) -> anyhow::Result<PodNet> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if n >= 16384 {
            bail!("the node's pod address range 10.244.0.0/16 is exhausted");
        }
        let base = u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 4 * n;
        let node_ip = Ipv4Addr::from(base + 1);
        let pod_ip = Ipv4Addr::from(base + 2);
        let pod = PodNet {
            netns: format!("{}-p{n}", self.netns),
            ip: pod_ip,
            node_netns: self.netns.clone(),
            veth: format!("vp{n}"),
        };
        let setup = || -> anyhow::Result<()> {
            ip(&["netns", "add", &pod.netns])?;
            ip(&["-n", &pod.netns, "link", "set", "lo", "up"])?;
            ip(&[
                "link",
                "add",
                "name",
                &pod.veth,
                "netns",
                &self.netns,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &pod.netns,
            ])?;
            ip(&[
                "-n",
                &pod.netns,
                "addr",
                "add",
                &format!("{pod_ip}/30"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &pod.netns, "link", "set", "eth0", "up"])?;
            ip(&[
                "-n",
                &self.netns,
                "addr",
                "add",
                &format!("{node_ip}/30"),
                "dev",
                &pod.veth,
            ])?;
            ip(&["-n", &self.netns, "link", "set", &pod.veth, "up"])?;
            ip(&[
                "-n",
                &pod.netns,
                "route",
                "add",
                "default",
                "via",
                &node_ip.to_string(),
            ])
        };
        if let Err(e) = setup() {
            pod.remove();
            return Err(e);
        }
        Ok(pod)
    }

    pub fn remove(&self) {
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

impl PodNet {
    pub fn remove(&self) {
        let _ = ip(&["-n", &self.node_netns, "link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.netns]);
    }

    /// Binds 127.0.0.1:PORT inside the pod for each API server and relays every connection to
    /// it, until `stop`.
    pub fn relay_api_servers(
        &self,
        servers: &[SocketAddr],
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        for &server in servers {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
            let l = in_netns(
                &self.netns,
                move || -> std::io::Result<std::net::TcpListener> {
                    let l = std::net::TcpListener::bind(addr)?;
                    l.set_nonblocking(true)?;
                    Ok(l)
                },
            )?
            .with_context(|| format!("binding {addr} in pod network namespace {}", self.netns))?;
            let l = tokio::net::TcpListener::from_std(l)?;
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    let conn = tokio::select! {
                        r = l.accept() => r,
                        () = stop.cancelled() => return,
                    };
                    let Ok((mut inbound, _)) = conn else { continue };
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream) => {}
                            () = stop.cancelled() => {}
                        }
                    });
                }
            });
        }
        Ok(())
    }
}

/// Runs `f` on a new thread that joined network namespace `netns` (sockets made there stay
/// there; the thread ends with `f`, so no other code runs in that namespace).
pub fn in_netns<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let path = format!("/run/netns/{netns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::spawn(move || -> anyhow::Result<T> {
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("joining network namespace {path}"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in network namespace {netns} panicked"))?
}

/// What one HTTP probe saw.
#[derive(Debug)]
pub enum HttpOutcome {
    /// The status code of the answer.
    Status(u16),
    /// No answer: the kubelet's message (connection refused, timeout).
    Failed(String),
}

/// `GET http://IP:PORT/PATH` from the node's namespace, as the kubelet's HTTP prober does.
pub fn http_get(
    node_netns: &str,
    ip: Ipv4Addr,
    port: u16,
    path: &str,
    timeout: Duration,
) -> HttpOutcome {
    let url = format!("http://{ip}:{port}{path}");
    let path = path.to_string();
    let r = in_netns(node_netns, move || -> std::io::Result<u16> {
        let addr = SocketAddr::from((ip, port));
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let k = s.read(&mut head[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed HTTP response"))
    });
    match r {
        Ok(Ok(code)) => HttpOutcome::Status(code),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            HttpOutcome::Failed(format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => HttpOutcome::Failed(
            format!("Get \"{url}\": dial tcp {ip}:{port}: connect: connection refused"),
        ),
        Ok(Err(e)) => HttpOutcome::Failed(format!("Get \"{url}\": {e}")),
        Err(e) => HttpOutcome::Failed(format!("{e:#}")),
    }
}
