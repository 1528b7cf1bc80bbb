//! Simulated CassKop (PLACEHOLDER until A3's module lands).
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CasskopOptions {
    pub ready_after: Duration,
    pub react_after: Duration,
}

pub async fn install_crd(client: kube::Client) -> anyhow::Result<()> {
    let _ = client;
    Ok(())
}

pub async fn run(client: kube::Client, opts: CasskopOptions) -> anyhow::Result<()> {
    let _ = (client, opts);
    std::future::pending::<()>().await;
    Ok(())
}
