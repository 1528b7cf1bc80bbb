//! `cargo run --release -p e2e --bin bench -- [--quick]`: handoff latency, idle cost, scale,
//! memory, CPU and startup of the real controller binary on kubesim; a table and
//! `target/bench/results.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;
use e2e::benchmark::{self, BenchSizes};

/// Benchmarks the multi-casskop controller on simulated clusters.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// Small sizes (CI, a first look): a few handoffs, 15 s idle, 60 resources at scale.
    #[arg(long)]
    quick: bool,
    /// Run only these parts (comma-separated: startup, handoff, scale, frozen), e.g. to profile one.
    #[arg(long, value_delimiter = ',', value_name = "PARTS")]
    only: Vec<String>,
    /// Where to write the results (default: target/bench/results.json of the workspace).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// The controller binary built with the same profile as this bench, next to it
/// (target/release/multi-casskop for `cargo run --release`), built when missing.
fn controller_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("MULTI_CASSKOP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let dir = exe.parent().context("bench executable has no directory")?;
    let bin = dir.join("multi-casskop");
    if bin.exists() {
        return Ok(bin);
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    eprintln!(
        "[bench] {} is missing: building it with `cargo build{} -p multi-casskop`",
        bin.display(),
        if release { " --release" } else { "" }
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").arg("-p").arg("multi-casskop");
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .current_dir(e2e::workspace_root())
        .status()
        .context("running cargo build")?;
    if !status.success() || !bin.exists() {
        bail!(
            "building the controller failed ({status}); {} still missing",
            bin.display()
        );
    }
    Ok(bin)
}

/// Run the bench with `sizes` against `bin`, print the table, write the results to `out`.
fn bench(sizes: &BenchSizes, bin: &Path, out: &Path) -> anyhow::Result<serde_json::Value> {
    eprintln!("[bench] controller binary: {}", bin.display());
    eprintln!("[bench] sizes: {sizes:?}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (results, details) = rt.block_on(benchmark::run(sizes))?;
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    println!("{}", benchmark::table(&results, &details));
    benchmark::write_results(out, &results)?;
    println!("results written to {}", out.display());
    Ok(serde_json::to_value(&results)?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = controller_binary()?;
    // The e2e harness (Env, ControllerProcess) starts this binary.
    e2e::use_binary(bin.clone());
    let mut sizes = if args.quick {
        BenchSizes::quick()
    } else {
        BenchSizes::full()
    };
    if !args.only.is_empty() {
        sizes.parts = args.only.clone();
    }
    let out = args.out.unwrap_or_else(|| {
        e2e::workspace_root()
            .join("target")
            .join("bench")
            .join("results.json")
    });
    bench(&sizes, &bin, &out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick bench runs end to end against the debug controller and writes every key as a
    /// number. No figure is asserted (shared, noisy machine): they are printed.
    #[test]
    fn quick_bench_writes_every_key_as_a_number() {
        let bin = e2e::binary().expect("the debug controller binary");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results.json");
        let v = bench(&BenchSizes::quick(), &bin, &out).expect("quick bench");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v, written);
        let keys = [
            "handoff_p50_ms",
            "handoff_p99_ms",
            "idle_requests_per_cr_min",
            "idle_reconciles_per_cr_min",
            "scale_crs",
            "scale_sites",
            "scale_converge_s",
            "controller_peak_rss_mib",
            "controller_cpu_s",
            "startup_ready_ms",
        ];
        let obj = written.as_object().expect("an object");
        assert_eq!(
            obj.len(),
            keys.len(),
            "exactly the results-file keys: {obj:?}"
        );
        for k in keys {
            assert!(
                obj.get(k).and_then(serde_json::Value::as_f64).is_some(),
                "{k} missing or not a number: {written}"
            );
        }
    }
}
