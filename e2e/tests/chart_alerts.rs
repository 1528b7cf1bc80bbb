//! The chart's alerts and dashboard: the PrometheusRule, rendered by real Helm 4, passes
//! Prometheus's own `promtool check rules` and `promtool test rules` (each alert fires after its
//! `for` with a summary and description naming what its labels name, and stays quiet when
//! healthy); every expression of the rules and of the Grafana dashboard names only metrics a
//! running controller exports; both are off by default and follow the values
//! kube-prometheus-stack users set (rule selector labels, sidecar label, namespaces).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::chart::{chart_dir, helm, render_chart_docs};
use e2e::{Env, eventually, retarget_sample, sample};
use serde_json::{Value, json};

const NS: &str = "cassandra";
const JOB: &str = "multi-casskop-metrics";

fn render(sets: &[&str]) -> Vec<Value> {
    let mut all = vec!["k8s.local=k8s-cluster1"];
    all.extend(sets);
    render_chart_docs(&all, NS)
        .expect("the chart renders")
        .into_iter()
        .map(|d| d.doc)
        .collect()
}

fn of_kind(docs: &[Value], kind: &str) -> Option<Value> {
    docs.iter().find(|d| d["kind"] == kind).cloned()
}

/// The rendered PrometheusRule's rules, every group flattened.
fn rules(rule: &Value) -> Vec<Value> {
    let groups = rule["spec"]["groups"].as_array().expect("spec.groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The dashboard JSON of the rendered ConfigMap.
fn dashboard(cm: &Value) -> Value {
    let text = cm["data"]["multi-casskop.json"]
        .as_str()
        .expect("the ConfigMap holds multi-casskop.json");
    serde_json::from_str(text).expect("the dashboard is valid JSON")
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn dashboard_exprs(dash: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.push(
                t["expr"]
                    .as_str()
                    .expect("a target has an expr")
                    .to_string(),
            );
        }
    }
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        if var["type"] == "query" {
            out.push(var["definition"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

/// The `multicasskop_...` metric names an expression mentions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("multicasskop_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The series names Prometheus stores from a `/metrics` text: each sample's name, plus what
/// each `# TYPE` line implies (counters `_total`, histograms `_bucket`/`_sum`/`_count`), so a
/// labelled family that has no sample yet counts too.
fn exported_series(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match kind {
                "counter" => {
                    out.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        out.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    out.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_string());
        }
    }
    out
}

#[test]
fn alerts_and_dashboard_are_off_by_default_and_follow_kube_prometheus_values() {
    let docs = render(&[]);
    assert!(of_kind(&docs, "PrometheusRule").is_none());
    assert!(!docs.iter().any(|d| d["kind"] == "ConfigMap"));

    let docs = render(&[
        "prometheusRule.enabled=true",
        "prometheusRule.additionalLabels.release=kube-prometheus-stack",
        "prometheusRule.namespace=monitoring",
        "prometheusRule.additionalRuleLabels.team=dba",
        "grafana.dashboard.enabled=true",
        "grafana.dashboard.annotations.grafana_folder=Cassandra",
    ]);
    let rule = of_kind(&docs, "PrometheusRule").expect("a PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], "monitoring");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    for r in rules(&rule) {
        let name = r["alert"].as_str().expect("every rule is an alert");
        assert_eq!(r["labels"]["team"], "dba", "{name}");
        assert!(
            ["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap_or("")),
            "{name} has a severity"
        );
        for a in ["summary", "description"] {
            assert!(r["annotations"][a].is_string(), "{name} has a {a}");
        }
        assert!(r["for"].is_string(), "{name} has a for");
    }
    let cm = of_kind(&docs, "ConfigMap").expect("the dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["namespace"], NS);
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Cassandra");
    let dash = dashboard(&cm);
    assert_eq!(dash["title"], "Multi-CassKop");

    let docs = render(&[
        "grafana.dashboard.enabled=true",
        "grafana.dashboard.label=my_dashboards",
        "grafana.dashboard.labelValue=yes",
    ]);
    let cm = of_kind(&docs, "ConfigMap").unwrap();
    assert_eq!(cm["metadata"]["labels"]["my_dashboards"], "yes");

    for (set, pointer) in [
        ("prometheusRule.enabled=yes", "/prometheusRule/enabled"),
        ("prometheusRule.additonalLabels.a=b", "/prometheusRule"),
        ("grafana.dashboard.enable=true", "/grafana/dashboard"),
    ] {
        let err = render_chart_docs(&["k8s.local=k8s-cluster1", set], NS)
            .expect_err(&format!("{set} must be refused"));
        assert!(format!("{err:#}").contains(pointer), "{set}: {err:#}");
    }
}

#[test]
fn lint_is_clean_with_alerts_and_dashboard_on() {
    let chart = chart_dir();
    let out = helm(&[
        "lint",
        chart.to_str().unwrap(),
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "grafana.dashboard.enabled=true",
    ])
    .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], json!([]), "{report}");
    let bad: Vec<_> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64() >= Some(2))
        .collect();
    assert!(bad.is_empty(), "lint warnings/errors: {bad:?}");
}

/// The metrics a controller serves at `/metrics` once it has rolled a sample MultiCasskop out
/// on kubesim (a labelled family shows in `/metrics` only once it has a sample).
async fn running_controller_metrics() -> String {
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2"])
        .await
        .expect("kubesim starts");
    // A remote registered with a bound token: the controller tends it (expiry, renewals).
    let out = env.register("k8s-cluster2", &[]).expect("register runs");
    assert!(
        out.status.success(),
        "register: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctl = env
        .start_controller("controller", &[])
        .expect("the controller starts");
    let mc = retarget_sample(&sample("multi-casskop.yaml").unwrap(), env.names());
    env.apply_yaml(&mc).expect("kubectl apply of the sample");
    let families = [
        "multicasskop_site_reachable{",
        "multicasskop_reconciles_total{",
        "multicasskop_site_writes_total{",
        "multicasskop_site_handoffs_total",
        "multicasskop_reconcile_duration_seconds_bucket{",
        "multicasskop_site_token_expiry_timestamp_seconds{",
        "multicasskop_site_token_renewals_total{",
    ];
    eventually(
        "/metrics to show every family",
        Duration::from_secs(240),
        || async {
            let (code, text) = ctl.http_get("/metrics")?;
            Ok((code == 200 && families.iter().all(|f| text.contains(f))).then_some(text))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", ctl.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_and_dashboard_expression_names_only_metrics_the_controller_exports() {
    let docs = render(&[
        "prometheusRule.enabled=true",
        "grafana.dashboard.enabled=true",
    ]);
    let rule = of_kind(&docs, "PrometheusRule").unwrap();
    let dash = dashboard(&of_kind(&docs, "ConfigMap").unwrap());
    let mut exprs: Vec<(String, String)> = rules(&rule)
        .iter()
        .map(|r| {
            let expr = r["expr"].as_str().unwrap().to_string();
            (format!("alert {}", r["alert"]), expr)
        })
        .collect();
    exprs.extend(
        dashboard_exprs(&dash)
            .into_iter()
            .map(|e| ("dashboard".to_string(), e)),
    );
    assert!(exprs.len() > 10, "{exprs:?}");

    let exported = exported_series(&running_controller_metrics().await);
    assert!(
        exported.contains("multicasskop_reconciles_total"),
        "{exported:?}"
    );
    for (whose, expr) in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "{whose}: {expr} names no controller metric"
        );
        for name in names {
            assert!(
                exported.contains(&name),
                "{whose}: {expr} names {name}, which the controller does not export: {exported:?}"
            );
        }
    }
}

/// promtool on the PATH, installed from Debian's `prometheus` package when missing and
/// possible (the test command installs it; this covers a bare `cargo nextest run`).
fn promtool() -> Option<PathBuf> {
    let find = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "prometheus"])
            .status();
    }
    find()
}

/// An alert's annotation as Prometheus expands it, for templates using only `$labels`.
fn expand(template: &str, labels: &BTreeMap<&str, &str>) -> String {
    let mut out = template.to_string();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    assert!(
        !out.contains("{{"),
        "an annotation uses more than $labels: {template}"
    );
    out
}

/// One alert expected at an evaluation time: its labels before the rule's own.
struct Expect {
    at: &'static str,
    alert: &'static str,
    firing: Vec<BTreeMap<&'static str, &'static str>>,
}

fn labels(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

fn series(name: &str, extra: &str, values: &str) -> Value {
    json!({"series": format!("{name}{{job=\"{JOB}\",{extra}}}"), "values": values})
}

/// Input series: namespace `cassandra` is sick in every way, the others are healthy.
fn sick_and_healthy_series() -> Vec<Value> {
    let ns = |n: &str, rest: &str| format!("namespace=\"{n}\"{rest}");
    vec![
        // Site k8s-cluster2 down from minute 2; k8s-cluster3 always up.
        series(
            "multicasskop_site_reachable",
            &ns(NS, ",site=\"k8s-cluster2\""),
            "1 1 0x100",
        ),
        series(
            "multicasskop_site_reachable",
            &ns(NS, ",site=\"k8s-cluster3\""),
            "1x102",
        ),
        // Blocked and failing every minute in cassandra; old counts that no longer move elsewhere.
        series(
            "multicasskop_reconciles_total",
            &ns(NS, ",result=\"blocked\""),
            "0+1x100",
        ),
        series(
            "multicasskop_reconciles_total",
            &ns("healthy", ",result=\"blocked\""),
            "5x100",
        ),
        series(
            "multicasskop_reconciles_total",
            &ns(NS, ",result=\"site_write_error\""),
            "0+1x100",
        ),
        series(
            "multicasskop_reconciles_total",
            &ns("healthy", ",result=\"timed_out\""),
            "3x100",
        ),
        // Waiting everywhere; cassandra never hands off nor writes, healthy hands off every
        // 20 minutes, writing writes every minute.
        series(
            "multicasskop_reconciles_total",
            &ns(NS, ",result=\"waiting\""),
            "0+1x100",
        ),
        series(
            "multicasskop_reconciles_total",
            &ns("healthy", ",result=\"waiting\""),
            "0+1x100",
        ),
        series(
            "multicasskop_reconciles_total",
            &ns("writing", ",result=\"waiting\""),
            "0+1x100",
        ),
        series("multicasskop_site_handoffs_total", &ns(NS, ""), "0x100"),
        series(
            "multicasskop_site_handoffs_total",
            &ns("healthy", ""),
            "0x20 1x20 2x20 3x40",
        ),
        series(
            "multicasskop_site_handoffs_total",
            &ns("writing", ""),
            "0x100",
        ),
        series(
            "multicasskop_site_writes_total",
            &ns("writing", ",site=\"k8s-cluster2\",verb=\"apply\""),
            "0+1x100",
        ),
        // Site k8s-cluster2's token: renewals fail every minute, and it expires at 50 minutes;
        // k8s-cluster3's renews and lasts.
        series(
            "multicasskop_site_token_renewals_total",
            &ns(NS, ",site=\"k8s-cluster2\",result=\"failure\""),
            "0+1x100",
        ),
        series(
            "multicasskop_site_token_renewals_total",
            &ns(NS, ",site=\"k8s-cluster3\",result=\"success\""),
            "0+1x100",
        ),
        series(
            "multicasskop_site_token_expiry_timestamp_seconds",
            &ns(NS, ",site=\"k8s-cluster2\""),
            "3000x100",
        ),
        series(
            "multicasskop_site_token_expiry_timestamp_seconds",
            &ns(NS, ",site=\"k8s-cluster3\""),
            "90000x100",
        ),
        // The controller of cassandra is scraped.
        series(
            "multicasskop_reconcile_duration_seconds_count",
            &ns(NS, ""),
            "0+1x100",
        ),
    ]
}

fn sick_and_healthy_expectations() -> Vec<Expect> {
    let sick = labels(&[("job", JOB), ("namespace", NS)]);
    let site2 = labels(&[("job", JOB), ("namespace", NS), ("site", "k8s-cluster2")]);
    let e = |at, alert, firing| Expect { at, alert, firing };
    vec![
        e("4m", "MultiCasskopSiteUnreachable", vec![]),
        e("10m", "MultiCasskopSiteUnreachable", vec![site2.clone()]),
        e("20m", "MultiCasskopRolloutBlocked", vec![]),
        e("45m", "MultiCasskopRolloutBlocked", vec![sick.clone()]),
        e("30m", "MultiCasskopRolloutStalled", vec![]),
        e("80m", "MultiCasskopRolloutStalled", vec![sick.clone()]),
        e("10m", "MultiCasskopReconcileErrors", vec![]),
        e("25m", "MultiCasskopReconcileErrors", vec![sick]),
        e("10m", "MultiCasskopSiteTokenRenewalFailing", vec![]),
        e(
            "25m",
            "MultiCasskopSiteTokenRenewalFailing",
            vec![site2.clone()],
        ),
        e("30m", "MultiCasskopSiteTokenExpiringSoon", vec![]),
        e("50m", "MultiCasskopSiteTokenExpiringSoon", vec![site2]),
        e("30m", "MultiCasskopMetricsAbsent", vec![]),
    ]
}

/// The promtool `alert_rule_test` entries for `expects`, labels and annotations as the rules
/// (with `extra` rule labels) produce them.
fn alert_tests(rules: &[Value], expects: &[Expect], extra: &[(&str, &str)]) -> Vec<Value> {
    let by_name: BTreeMap<&str, &Value> = rules
        .iter()
        .map(|r| (r["alert"].as_str().unwrap(), r))
        .collect();
    expects
        .iter()
        .map(|x| {
            let rule = by_name
                .get(x.alert)
                .unwrap_or_else(|| panic!("no alert {}", x.alert));
            let alerts: Vec<Value> = x
                .firing
                .iter()
                .map(|l| {
                    let mut all: BTreeMap<String, String> = l
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    for (k, v) in rule["labels"].as_object().unwrap() {
                        all.insert(k.clone(), v.as_str().unwrap().to_string());
                    }
                    for (k, v) in extra {
                        assert_eq!(all.get(*k).map(String::as_str), Some(*v));
                    }
                    let annotations: BTreeMap<String, String> = rule["annotations"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap(), l)))
                        .collect();
                    // The description names every site and namespace label; the summary the
                    // site when there is one, else the namespace.
                    for (k, v) in l.iter().filter(|(k, _)| ["site", "namespace"].contains(k)) {
                        let d = &annotations["description"];
                        assert!(d.contains(v), "{}: {d} names {k} {v}", x.alert);
                    }
                    let what = l.get("site").or_else(|| l.get("namespace")).unwrap();
                    let summary = &annotations["summary"];
                    assert!(
                        summary.contains(what),
                        "{}: {summary} names {what}",
                        x.alert
                    );
                    json!({"exp_labels": all, "exp_annotations": annotations})
                })
                .collect();
            json!({"eval_time": x.at, "alertname": x.alert, "exp_alerts": alerts})
        })
        .collect()
}

#[test]
fn promtool_unit_tests_fire_each_alert_after_its_for_and_never_when_healthy() {
    let Some(promtool) = promtool() else {
        eprintln!(
            "SKIPPED: promtool is not on the PATH and could not be installed (Debian package \
             prometheus; scripts/test.sh installs it)"
        );
        return;
    };
    let docs = render(&[
        "prometheusRule.enabled=true",
        "prometheusRule.additionalRuleLabels.team=dba",
    ]);
    let rule = of_kind(&docs, "PrometheusRule").expect("a PrometheusRule");
    let rules = rules(&rule);
    let dir = tempfile::tempdir().unwrap();
    let rule_file = dir.path().join("multi-casskop-rules.json");
    std::fs::write(
        &rule_file,
        json!({"groups": rule["spec"]["groups"]}).to_string(),
    )
    .unwrap();

    let extra = [("team", "dba")];
    let sick = sick_and_healthy_expectations();
    // No controller of cassandra scraped at all: only another namespace's.
    let absent = [
        Expect {
            at: "10m",
            alert: "MultiCasskopMetricsAbsent",
            firing: vec![],
        },
        Expect {
            at: "20m",
            alert: "MultiCasskopMetricsAbsent",
            firing: vec![labels(&[("namespace", NS)])],
        },
    ];
    let tested: BTreeSet<&str> = sick.iter().chain(&absent).map(|x| x.alert).collect();
    let defined: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(tested, defined, "every alert has a promtool test");
    for alert in &defined {
        let cases: Vec<_> = sick
            .iter()
            .chain(&absent)
            .filter(|x| x.alert == *alert)
            .collect();
        assert!(
            cases.iter().any(|x| !x.firing.is_empty()),
            "{alert} is seen firing"
        );
        assert!(
            cases.iter().any(|x| x.firing.is_empty()),
            "{alert} is seen quiet"
        );
    }
    let tests = json!({
        "rule_files": [rule_file.file_name().unwrap().to_str().unwrap()],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": sick_and_healthy_series(),
             "alert_rule_test": alert_tests(&rules, &sick, &extra)},
            {"interval": "1m",
             "input_series": [series("multicasskop_reconcile_duration_seconds_count",
                 "namespace=\"other\"", "0+1x40")],
             "alert_rule_test": alert_tests(&rules, &absent, &extra)},
        ],
    });
    let test_file = dir.path().join("multi-casskop-rules.test.json");
    std::fs::write(&test_file, serde_json::to_string_pretty(&tests).unwrap()).unwrap();

    for args in [
        vec!["check", "rules", rule_file.to_str().unwrap()],
        vec!["test", "rules", test_file.to_str().unwrap()],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}\ntest file:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            serde_json::to_string_pretty(&tests).unwrap()
        );
    }
}
