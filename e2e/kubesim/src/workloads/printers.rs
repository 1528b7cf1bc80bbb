//! Table columns kube-apiserver prints for Deployments, ReplicaSets, Services, Endpoints and EndpointSlices (`kubectl get deploy,rs,svc,ep,endpointslices`), as (name, type, description, computed path, priority) and the cells of the computed paths.
use serde_json::{Value, json};

/// (name, type, description, `#path`, priority) of one column.
pub type Column = (&'static str, &'static str, &'static str, &'static str, i32);

const CONTAINERS: Column = (
    "Containers",
    "string",
    "Names of each container in the template.",
    "#template.containers",
    1,
);
const IMAGES: Column = (
    "Images",
    "string",
    "Images referenced by each container in the template.",
    "#template.images",
    1,
);

/// The columns after Name of `kind` (Age is `#age`), or None for other kinds.
pub fn columns(kind: &str) -> Option<Vec<Column>> {
    let age: Column = (
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        "#age",
        0,
    );
    Some(match kind {
        "Deployment" => vec![
            (
                "Ready",
                "string",
                "Number of the pod with ready state",
                "#deploy.ready",
                0,
            ),
            (
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                "#deploy.updated",
                0,
            ),
            (
                "Available",
                "integer",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                "#deploy.available",
                0,
            ),
            age,
            CONTAINERS,
            IMAGES,
            (
                "Selector",
                "string",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                "#selector",
                1,
            ),
        ],
        "ReplicaSet" => vec![
            (
                "Desired",
                "integer",
                "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1.",
                "#rs.desired",
                0,
            ),
            (
                "Current",
                "integer",
                "Replicas is the most recently observed number of non-terminating pods.",
                "#rs.current",
                0,
            ),
            (
                "Ready",
                "integer",
                "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
                "#rs.ready",
                0,
            ),
            age,
            CONTAINERS,
            IMAGES,
            (
                "Selector",
                "string",
                "Selector is a label query over pods that should match the replica count.",
                "#selector",
                1,
            ),
        ],
        "Service" => vec![
            (
                "Type",
                "string",
                "type determines how the Service is exposed.",
                "#svc.type",
                0,
            ),
            (
                "Cluster-IP",
                "string",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
                "#svc.clusterIP",
                0,
            ),
            (
                "External-IP",
                "string",
                "List of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                "#svc.externalIP",
                0,
            ),
            (
                "Port(s)",
                "string",
                "The ports that are exposed by this service.",
                "#svc.ports",
                0,
            ),
            age,
            (
                "Selector",
                "string",
                "Route service traffic to pods with label keys and values matching this selector.",
                "#svc.selector",
                1,
            ),
        ],
        "Endpoints" => vec![
            (
                "Endpoints",
                "string",
                "Endpoints of the subsets (ready addresses and ports).",
                "#ep.endpoints",
                0,
            ),
            age,
        ],
        "EndpointSlice" => vec![
            (
                "AddressType",
                "string",
                "The IP protocol for this slice",
                "#eps.addressType",
                0,
            ),
            (
                "Ports",
                "string",
                "The ports contained by this slice",
                "#eps.ports",
                0,
            ),
            (
                "Endpoints",
                "string",
                "The first three endpoint addresses of this slice",
                "#eps.endpoints",
                0,
            ),
            age,
        ],
        _ => return None,
    })
}

fn int(obj: &Value, pointer: &str, default: i64) -> Value {
    json!(
        obj.pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(default)
    )
}

fn label_map(m: &Value) -> String {
    match m.as_object() {
        Some(m) if !m.is_empty() => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            kv.join(",")
        }
        _ => "<none>".into(),
    }
}

/// The cell of a computed column of these kinds (None: not one of theirs).
pub fn cell(obj: &Value, path: &str) -> Option<Value> {
    Some(match path {
        "#deploy.ready" => json!(format!(
            "{}/{}",
            int(obj, "/status/readyReplicas", 0),
            int(obj, "/spec/replicas", 1)
        )),
        "#deploy.updated" => int(obj, "/status/updatedReplicas", 0),
        "#deploy.available" => int(obj, "/status/availableReplicas", 0),
        "#rs.desired" => int(obj, "/spec/replicas", 1),
        "#rs.current" => int(obj, "/status/replicas", 0),
        "#rs.ready" => int(obj, "/status/readyReplicas", 0),
        "#selector" => json!(super::util::format_selector(&obj["spec"]["selector"])),
        "#svc.type" => obj["spec"]["type"].clone(),
        "#svc.clusterIP" => match obj["spec"]["clusterIP"].as_str() {
            Some(ip) if !ip.is_empty() => json!(ip),
            _ => json!("<none>"),
        },
        "#svc.externalIP" => json!(external_ip(obj)),
        "#svc.ports" => json!(ports(obj)),
        "#svc.selector" => json!(label_map(&obj["spec"]["selector"])),
        "#ep.endpoints" => json!(endpoints(obj)),
        "#eps.addressType" => obj["addressType"].clone(),
        "#eps.ports" => json!(slice_ports(obj)),
        "#eps.endpoints" => json!(slice_addresses(obj)),
        _ => return None,
    })
}

fn external_ip(svc: &Value) -> String {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    let external = list(&svc["spec"]["externalIPs"]);
    match svc["spec"]["type"].as_str() {
        Some("ExternalName") => svc["spec"]["externalName"].as_str().unwrap_or("").into(),
        Some("LoadBalancer") => {
            let mut ips: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(String::from)
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ if !external.is_empty() => external.join(","),
        _ => "<none>".into(),
    }
}

fn ports(svc: &Value) -> String {
    let ps: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(n) => format!("{}:{n}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if ps.is_empty() {
        "<none>".into()
    } else {
        ps.join(",")
    }
}

/// kube's `formatEndpoints`: ready `ip:port` pairs, three at most, then `+ N more...`.
fn endpoints(ep: &Value) -> String {
    let mut all = vec![];
    for s in ep["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for a in s["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or("");
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for p in &ports {
                all.push(format!("{ip}:{p}"));
            }
        }
    }
    match all.len() {
        0 => "<none>".into(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

fn first_three(all: &[String]) -> String {
    match all.len() {
        0 => "<unset>".into(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

fn slice_ports(eps: &Value) -> String {
    let ports: Vec<String> = eps["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            p["port"]
                .as_i64()
                .map_or("<unset>".into(), |n| n.to_string())
        })
        .collect();
    first_three(&ports)
}

fn slice_addresses(eps: &Value) -> String {
    let addrs: Vec<String> = eps["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    first_three(&addrs)
}
