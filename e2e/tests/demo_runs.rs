//! The README's demo, run as written (debug build): three simulated clusters, register, the real controller, the sample applied with kubectl, sites Running in order, status and ring; exit 0.

#[tokio::test]
async fn demo_exits_0_with_sites_running_in_order_and_the_ring_ok() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--ready-after", "0.5", "--react-after", "0.2"])
        .env("RUST_BACKTRACE", "0")
        // The binary scripts/test.sh built, not a nested cargo build.
        .env(
            "MULTI_CASSKOP_BIN",
            e2e::binary().expect("multi-casskop built"),
        )
        .output()
        .await
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "demo failed");
    let pos = |s: &str| stdout.find(s).unwrap_or_else(|| panic!("missing {s:?}"));
    // Progress lines: each site becomes Running, in order.
    assert!(pos("k8s-cluster1  Running") < pos("k8s-cluster2  Running"));
    assert!(pos("k8s-cluster2  Running") < pos("k8s-cluster3  Running"));
    assert!(
        stdout.contains("first written") && stdout.contains("after k8s-cluster2 was Running/Done")
    );
    assert!(stdout.contains("ready sites 3/3"));
    assert!(stdout.contains("ring OK: 3 DCs, 5 nodes"));
}
