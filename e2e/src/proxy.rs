//! A TCP forwarder that can freeze every connection, or silently kill the ones open now.
//!
//! What a firewall that drops packets, or a wedged load balancer, looks like to a client: its
//! requests are sent, never answered, and no error comes back. The simulated API servers keep
//! answering everyone else (the other replica, the test's own kubectl).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A forwarder from a local port to `target`; stops (with every connection) when dropped.
pub struct FreezableProxy {
    addr: SocketAddr,
    frozen: watch::Sender<Gate>,
    /// Connections accepted so far (each is numbered in accept order).
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// What moves: nothing while `frozen`; never again on connections numbered below `dead_below`.
#[derive(Clone, Copy, Debug, Default)]
struct Gate {
    frozen: bool,
    dead_below: u64,
}

impl Gate {
    fn open_for(self, connection: u64) -> bool {
        !self.frozen && connection >= self.dead_below
    }
}

impl FreezableProxy {
    /// Listen on 127.0.0.1 (a free port) and forward every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (frozen, _) = watch::channel(Gate::default());
        let gate = frozen.clone();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when the proxy is dropped) ends every connection's task.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let number = count.fetch_add(1, Ordering::SeqCst);
                connections.spawn(forward(client, target, (number, gate.subscribe())));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            frozen,
            accepted,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` of the forwarder, for a kubeconfig.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stop moving bytes (and connecting upstream); everything stays open.
    pub fn freeze(&self) {
        self.frozen.send_modify(|g| g.frozen = true);
    }

    /// Move bytes again, including those held while frozen.
    pub fn thaw(&self) {
        self.frozen.send_modify(|g| g.frozen = false);
    }

    /// The connections open now go silent for good (nothing closed, no byte moved either way,
    /// as when a partition dropped their packets and the far end forgot them); connections
    /// made afterwards work.
    pub fn kill_open_connections_silently(&self) {
        let next = self.accepted.load(Ordering::SeqCst);
        self.frozen.send_modify(|g| g.dead_below = next);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection's number and its view of the gate.
type ConnectionGate = (u64, watch::Receiver<Gate>);

/// Until the gate is open for this connection; `false` when the proxy is gone.
async fn thawed((number, gate): &mut ConnectionGate) -> bool {
    let number = *number;
    gate.wait_for(|g| g.open_for(number)).await.is_ok()
}

async fn forward(client: TcpStream, target: SocketAddr, mut gate: ConnectionGate) {
    if !thawed(&mut gate).await {
        return;
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, gate.clone()),
        pump(upstream_read, client_write, gate),
    );
}

/// Copy `from` to `to`, holding whatever was read while frozen until thawed.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: ConnectionGate) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !thawed(&mut gate).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if !thawed(&mut gate).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An echo server: what it reads it writes back.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_frozen_proxy_keeps_the_connection_open_and_delivers_nothing_until_thawed() {
        let proxy = FreezableProxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 5];
        s.write_all(b"hello").await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        proxy.freeze();
        s.write_all(b"again").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(waited.is_err(), "no answer and no EOF while frozen");

        proxy.thaw();
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again", "held bytes are delivered once thawed");
    }

    #[tokio::test]
    async fn silently_killed_connections_stay_open_and_mute_while_new_ones_work() {
        let proxy = FreezableProxy::start(echo().await).await.unwrap();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 5];
        old.write_all(b"hello").await.unwrap();
        old.read_exact(&mut buf).await.unwrap();

        proxy.kill_open_connections_silently();
        old.write_all(b"again").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), old.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "no answer and no EOF on the old connection"
        );

        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        new.write_all(b"fresh").await.unwrap();
        new.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"fresh", "a new connection is forwarded");
    }
}
