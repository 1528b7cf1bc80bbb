//! The built-in workload kinds a chart installs, as kube-controller-manager runs them: the deployment, replicaset and endpoints controllers and the garbage collector's foreground deletion, plus the admission (defaults, validation, ClusterIPs) and table columns of their kinds.
//!
//! The controllers work on the store under its lock, one pass at a time, woken by changes of
//! Deployments, ReplicaSets, Pods and Services and by a short resync (availability after
//! `minReadySeconds`, progress deadlines, and foreground deletions of any kind, looked for on
//! the resync only). Their writes go
//! through the same object semantics as API requests.
pub mod admission;
mod deployment;
mod endpoints;
mod gc;
pub mod printers;
mod replicaset;
mod util;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::resources::ResKey;
use crate::store::{Store, WatchMsg};

/// How often the controllers look again without a change (kube's resyncs are longer; a
/// simulated cluster's tests want progress deadlines and minReadySeconds seen promptly).
const RESYNC: Duration = Duration::from_millis(500);

fn watched() -> [ResKey; 4] {
    let k = |g: &str, p: &str| ResKey {
        group: g.into(),
        plural: p.into(),
    };
    [
        k("apps", "deployments"),
        k("apps", "replicasets"),
        k("", "pods"),
        k("", "services"),
    ]
}

fn subscribe(store: &Store) -> Vec<UnboundedReceiver<WatchMsg>> {
    let mut st = store.lock();
    watched()
        .iter()
        .filter_map(|k| st.watch(k, None, None).ok().map(|(_, rx)| rx))
        .collect()
}

/// Waits for a change of a watched resource; false when a watch ended (resubscribe).
async fn changed(rxs: &mut [UnboundedReceiver<WatchMsg>]) -> bool {
    let recvs = rxs.iter_mut().map(|rx| Box::pin(rx.recv()));
    let (msg, _, _) = futures::future::select_all(recvs).await;
    matches!(msg, Some(WatchMsg::Event(_)))
}

/// One pass of every controller; `gc`: also of foreground deletions, which scan every table
/// (so only on the resync tick, not on each change of a watched resource).
fn pass(store: &Store, gc: bool) {
    let mut st = store.lock();
    replicaset::sync_all(&mut st);
    deployment::sync_all(&mut st);
    endpoints::sync_all(&mut st);
    if gc {
        gc::collect(&mut st);
    }
}

/// Runs the controllers of one cluster until `shutdown`.
pub async fn run(store: Arc<Store>, shutdown: CancellationToken) {
    let mut rxs = subscribe(&store);
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        let gc = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => true,
            ok = changed(&mut rxs) => {
                if !ok {
                    rxs = subscribe(&store);
                }
                false
            }
        };
        // Everything already queued is seen by this pass.
        for rx in &mut rxs {
            while rx.try_recv().is_ok() {}
        }
        pass(&store, gc);
    }
}
