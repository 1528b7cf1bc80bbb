//! HTTPS listener of one simulated cluster: TLS accept, HTTP/1.1 + HTTP/2 (or HTTP/1.1 only, a fault), the unreachable fault (listener closed, connections aborted, same port re-bound), the freeze fault (every socket stalled).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterInner;
use crate::freeze::Frozen;
use crate::handlers;

/// Serves until `c.shutdown` is cancelled. `listener` is the already bound first listener.
pub async fn serve(c: Arc<ClusterInner>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let http1_only = {
        let mut cfg = (*tls).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(cfg))
    };
    let acceptor = TlsAcceptor::from(tls);
    let mut unreachable = c.faults.unreachable_rx();
    let mut listener = Some(listener);
    loop {
        // Wait while unreachable: nothing listens on the port.
        while *unreachable.borrow_and_update() {
            tokio::select! {
                r = unreachable.changed() => if r.is_err() { return },
                _ = c.shutdown.cancelled() => return,
            }
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind_again(c.addr, &c.shutdown).await {
                Some(l) => l,
                None => return,
            },
        };
        let conns = CancellationToken::new();
        loop {
            tokio::select! {
                r = l.accept() => {
                    let Ok((tcp, _)) = r else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = if c.faults.is_http1_only() { &http1_only } else { &acceptor };
                    tokio::spawn(connection(c.clone(), acceptor.clone(), tcp, conns.clone()));
                }
                r = unreachable.changed() => {
                    if r.is_err() || *unreachable.borrow() {
                        conns.cancel();
                        break;
                    }
                }
                _ = c.shutdown.cancelled() => {
                    conns.cancel();
                    return;
                }
            }
        }
        drop(l);
    }
}

async fn bind_again(addr: SocketAddr, shutdown: &CancellationToken) -> Option<TcpListener> {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!("kubesim: re-binding {addr} failed: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

async fn connection(
    c: Arc<ClusterInner>,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    cancel: CancellationToken,
) {
    let gate = c.faults.freeze_gate();
    let accept = acceptor.accept(Frozen::new(tcp, gate.clone()));
    tokio::pin!(accept);
    // A handshake that never completes is dropped after 10 s, except while frozen: a frozen
    // server keeps its connections open.
    let tls = loop {
        tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(10), accept.as_mut()) => match r {
                Ok(Ok(s)) => break s,
                Err(_) if gate.is_frozen() => {}
                _ => return,
            },
            _ = cancel.cancelled() => return,
        }
    };
    let svc_cluster = c.clone();
    let service = hyper::service::service_fn(move |req| {
        let c = svc_cluster.clone();
        async move { Ok::<_, std::convert::Infallible>(handlers::handle(c, req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::select! {
        _ = conn => {}
        _ = cancel.cancelled() => {}
        _ = c.shutdown.cancelled() => {}
    }
}
