//! Simulated `nodetool`: the command-line grammar the simulated Cassandra pods accept and the text of `nodetool status` (Cassandra 3.11's exact layout), rendered from a ring snapshot (pure, no I/O).
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Labels CassKop sets on its pods (same values as real CassKop and the simulated one).
pub const LABEL_APP: &str = "app";
pub const APP_VALUE: &str = "cassandracluster";
pub const LABEL_CLUSTER: &str = "cassandracluster";
pub const LABEL_DC: &str = "cassandraclusters.db.orange.com.dc";
pub const LABEL_RACK: &str = "cassandraclusters.db.orange.com.rack";

/// Cassandra version the simulated nodes report.
pub const RELEASE_VERSION: &str = "3.11.9";

/// One node of the ring as a `nodetool status` line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RingNode {
    pub dc: String,
    pub rack: String,
    /// Pod IP.
    pub address: String,
    /// Up (`U`) or down (`D`).
    pub up: bool,
    /// Data size in KiB.
    pub load_kib: f64,
    pub tokens: u32,
    /// Host ID (a UUID; the pod's uid).
    pub host_id: String,
}

/// What a command line asks of the simulated container.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    NodetoolStatus,
    /// `nodetool status <keyspace>`: effective ownership for that keyspace.
    NodetoolStatusKeyspace(String),
    /// `nodetool describering <keyspace>`.
    NodetoolDescribering(String),
    NodetoolVersion,
    /// `cqlsh [host] -e "<statements>"`; `None` when no `-e` was given (an interactive shell,
    /// which exec without stdin cannot serve).
    Cqlsh(Option<String>),
    /// `nodetool` with a subcommand or option the simulation does not know.
    NodetoolUnknown(String),
    Hostname,
    Echo(String),
    True,
    /// Not found in the container (`exit 127`).
    NotFound(String),
}

/// Parses an exec command vector (`["nodetool", "-h", "localhost", "status"]`, or the same
/// through `sh -c "..."`).
pub fn parse_command(argv: &[String]) -> Command {
    let owned: Vec<String>;
    let argv = match argv {
        [sh, c, script, ..]
            if matches!(sh.as_str(), "sh" | "bash" | "/bin/sh" | "/bin/bash") && c == "-c" =>
        {
            owned = script.split_whitespace().map(str::to_string).collect();
            owned.as_slice()
        }
        _ => argv,
    };
    let Some((prog, args)) = argv.split_first() else {
        return Command::NotFound(String::new());
    };
    let base = prog.rsplit('/').next().unwrap_or(prog);
    match base {
        "nodetool" => parse_nodetool(args),
        "cqlsh" => parse_cqlsh(args),
        "hostname" => Command::Hostname,
        "echo" => Command::Echo(args.join(" ")),
        "true" => Command::True,
        _ => Command::NotFound(prog.clone()),
    }
}

fn parse_nodetool(args: &[String]) -> Command {
    let mut rest = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            // Connection options take a value; the simulation always talks to the local node.
            "-h" | "--host" | "-p" | "--port" | "-u" | "--username" | "-pw" | "--password"
            | "-pwf" | "--password-file" => i += 2,
            _ if a.starts_with("--host=") || a.starts_with("--port=") => i += 1,
            // Display options of `status` (resolve IPs); accepted and ignored.
            "-r" | "--resolve-ip" => i += 1,
            _ => {
                rest.push(a);
                i += 1;
            }
        }
    }
    match rest.as_slice() {
        ["status"] => Command::NodetoolStatus,
        ["status", ks] => Command::NodetoolStatusKeyspace((*ks).to_string()),
        ["describering", ks] => Command::NodetoolDescribering((*ks).to_string()),
        ["version"] => Command::NodetoolVersion,
        [] => Command::NodetoolUnknown(String::new()),
        other => Command::NodetoolUnknown(other.join(" ")),
    }
}

fn parse_cqlsh(args: &[String]) -> Command {
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-e" | "--execute" => return Command::Cqlsh(args.get(i + 1).cloned()),
            a if a.starts_with("--execute=") => {
                return Command::Cqlsh(Some(a["--execute=".len()..].to_string()));
            }
            // Options with a value (user, password, keyspace, ...): the local node answers.
            "-u" | "--username" | "-p" | "--password" | "-k" | "--keyspace" | "-f" | "--file"
            | "--cqlversion" | "--encoding" | "--connect-timeout" | "--request-timeout" => i += 2,
            _ => i += 1,
        }
    }
    Command::Cqlsh(None)
}

/// Stable 64-bit hash of a string (FNV-1a: the same on every run and platform).
pub fn stable_hash(s: &str) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    s.hash(&mut h);
    h.0
}

struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A plausible, stable load for a node (60 to 140 KiB, like a fresh node with system keyspaces).
pub fn simulated_load_kib(seed: &str) -> f64 {
    60.0 + (stable_hash(seed) % 8000) as f64 / 100.0
}

/// Effective ownership per node of one DC: each DC holds one replica of the data (RF 1 per DC,
/// as in the CassKop sample), split unevenly by the random vnode tokens; sums to 100 %.
fn effective_owns(nodes: &[&RingNode]) -> Vec<f64> {
    let weights: Vec<f64> = nodes
        .iter()
        .map(|n| 0.9 + (stable_hash(&n.host_id) % 200) as f64 / 1000.0)
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

fn format_load(kib: f64) -> String {
    if kib >= 1024.0 * 1024.0 {
        format!("{:.2} GiB", kib / 1024.0 / 1024.0)
    } else if kib >= 1024.0 {
        format!("{:.2} MiB", kib / 1024.0)
    } else {
        format!("{kib:.2} KiB")
    }
}

fn address_order(a: &str) -> (u8, Vec<u32>, String) {
    match a.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => (
            0,
            ip.octets().iter().map(|o| u32::from(*o)).collect(),
            String::new(),
        ),
        Err(_) => (1, vec![], a.to_string()),
    }
}

/// `nodetool status` output for `nodes`, laid out like Cassandra 3.11's `Status` command: one
/// block per DC (sorted by name), nodes sorted by address, column widths as Cassandra computes
/// them (the address column as wide as the longest address).
pub fn render_status(nodes: &[RingNode]) -> String {
    render_status_with(nodes, &Ownership::OneReplicaPerDc)
}

/// What the `Owns` column of `nodetool status` shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Ownership {
    /// One replica of the data in each DC (each DC's nodes sum to 100 %).
    OneReplicaPerDc,
    /// Effective ownership of each node (same order as the nodes given) for one keyspace.
    Effective(Vec<f64>),
    /// No meaningful effective ownership: `Owns` is the raw token share, and Cassandra prints
    /// this note under the table.
    Meaningless(String),
}

/// `nodetool status` with the `Owns` column as `owns` says.
pub fn render_status_with(nodes: &[RingNode], owns: &Ownership) -> String {
    let by_node: Option<Vec<f64>> = match owns {
        Ownership::Effective(v) => Some(v.clone()),
        Ownership::Meaningless(_) => {
            let all: Vec<&RingNode> = nodes.iter().collect();
            Some(effective_owns(&all))
        }
        Ownership::OneReplicaPerDc => None,
    };
    let header = match owns {
        Ownership::Meaningless(_) => "Owns",
        _ => "Owns (effective)",
    };
    let mut dcs: BTreeMap<&str, Vec<(usize, &RingNode)>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        dcs.entry(n.dc.as_str()).or_default().push((i, n));
    }
    let addr_w = nodes
        .iter()
        .map(|n| n.address.len())
        .max()
        .unwrap_or(0)
        .max("Address".len());
    let line = |status: &str,
                address: &str,
                load: &str,
                tokens: &str,
                owns: &str,
                host: &str,
                rack: &str| {
        format!(
            "{status:<2}  {address:<addr_w$}  {load:<9}  {tokens:<11}  {owns:<16}  {host:<36}  {rack}\n"
        )
    };
    let mut out = String::new();
    for (i, (dc, mut members)) in dcs.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        members.sort_by_key(|(_, n)| address_order(&n.address));
        let owns: Vec<f64> = match &by_node {
            Some(v) => members
                .iter()
                .map(|(i, _)| v.get(*i).copied().unwrap_or(0.0))
                .collect(),
            None => effective_owns(&members.iter().map(|(_, n)| *n).collect::<Vec<_>>()),
        };
        out.push_str(&format!("Datacenter: {dc}\n"));
        out.push_str(&"=".repeat(dc.len() + 12));
        out.push('\n');
        out.push_str("Status=Up/Down\n");
        out.push_str("|/ State=Normal/Leaving/Joining/Moving\n");
        out.push_str(&line(
            "--", "Address", "Load", "Tokens", header, "Host ID", "Rack",
        ));
        for ((_, n), own) in members.iter().zip(owns) {
            let status = if n.up { "UN" } else { "DN" };
            let load = format_load(n.load_kib);
            let owns = format!("{:.1}%", own * 100.0);
            out.push_str(&line(
                status,
                &n.address,
                &load,
                &n.tokens.to_string(),
                &owns,
                &n.host_id,
                &n.rack,
            ));
        }
    }
    if let Ownership::Meaningless(note) = owns
        && !nodes.is_empty()
    {
        out.push_str(&format!("\nNote: {note}\n"));
    }
    out
}

/// What `nodetool` prints when it cannot reach the node's JMX port (the node is down).
pub fn connection_refused() -> String {
    "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException: 'Connection refused (Connection refused)'.\n".to_string()
}

/// `nodetool version`.
pub fn render_version() -> String {
    format!("ReleaseVersion: {RELEASE_VERSION}\n")
}

/// What `nodetool` prints for an unknown subcommand.
pub fn unknown_subcommand(what: &str) -> String {
    if what.is_empty() {
        "nodetool: a command is required (the simulated node knows: status, version)\nSee 'nodetool help' or 'nodetool help <command>'.\n"
            .to_string()
    } else {
        format!(
            "nodetool: Found unexpected parameters: [{what}]\nSee 'nodetool help' or 'nodetool help <command>'.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn node(dc: &str, rack: &str, address: &str, up: bool) -> RingNode {
        RingNode {
            dc: dc.into(),
            rack: rack.into(),
            address: address.into(),
            up,
            load_kib: simulated_load_kib(address),
            tokens: 256,
            host_id: format!(
                "{:08x}-0000-4000-8000-{:012x}",
                stable_hash(address) as u32,
                stable_hash(dc) & 0xffff_ffff_ffff
            ),
        }
    }

    #[test]
    fn command_grammar() {
        assert_eq!(
            parse_command(&s(&["nodetool", "status"])),
            Command::NodetoolStatus
        );
        assert_eq!(
            parse_command(&s(&["nodetool", "-h", "localhost", "status"])),
            Command::NodetoolStatus
        );
        assert_eq!(
            parse_command(&s(&[
                "/usr/bin/nodetool",
                "-h",
                "127.0.0.1",
                "-p",
                "7199",
                "status",
                "-r"
            ])),
            Command::NodetoolStatus
        );
        assert_eq!(
            parse_command(&s(&["sh", "-c", "nodetool -h localhost status"])),
            Command::NodetoolStatus
        );
        assert_eq!(
            parse_command(&s(&["nodetool", "version"])),
            Command::NodetoolVersion
        );
        assert_eq!(
            parse_command(&s(&["nodetool", "ring"])),
            Command::NodetoolUnknown("ring".into())
        );
        assert_eq!(
            parse_command(&s(&["nodetool"])),
            Command::NodetoolUnknown(String::new())
        );
        assert_eq!(
            parse_command(&s(&["psql"])),
            Command::NotFound("psql".into())
        );
        assert_eq!(
            parse_command(&s(&["cqlsh", "-e", "DESCRIBE KEYSPACES"])),
            Command::Cqlsh(Some("DESCRIBE KEYSPACES".into()))
        );
        assert_eq!(parse_command(&s(&["cqlsh"])), Command::Cqlsh(None));
        assert_eq!(
            parse_command(&s(&["nodetool", "describering", "system_auth"])),
            Command::NodetoolDescribering("system_auth".into())
        );
        assert_eq!(
            parse_command(&s(&["echo", "a", "b"])),
            Command::Echo("a b".into())
        );
        assert_eq!(parse_command(&[]), Command::NotFound(String::new()));
    }

    #[test]
    fn status_layout_matches_cassandra() {
        let nodes = vec![
            node("dc2", "rack1", "10.1.0.12", true),
            node("dc1", "rack2", "10.0.0.9", false),
            node("dc1", "rack1", "10.0.0.10", true),
        ];
        let out = render_status(&nodes);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Datacenter: dc1");
        assert_eq!(lines[1], "===============");
        assert_eq!(lines[2], "Status=Up/Down");
        assert_eq!(lines[3], "|/ State=Normal/Leaving/Joining/Moving");
        assert_eq!(
            lines[4],
            "--  Address    Load       Tokens       Owns (effective)  Host ID                               Rack"
        );
        // Sorted by address numerically: .9 before .10.
        assert!(lines[5].starts_with("DN  10.0.0.9   "), "{}", lines[5]);
        assert!(lines[5].ends_with("  rack2"));
        assert!(lines[6].starts_with("UN  10.0.0.10  "), "{}", lines[6]);
        assert_eq!(lines[7], "");
        assert_eq!(lines[8], "Datacenter: dc2");
        assert!(lines[13].starts_with("UN  10.1.0.12  "));
        assert_eq!(lines.len(), 14);
        // Effective ownership sums to 100 % in each DC.
        let owns: f64 = lines[5..7]
            .iter()
            .map(|l| {
                l.split_whitespace()
                    .nth(5)
                    .unwrap()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .unwrap()
            })
            .sum();
        assert!((owns - 100.0).abs() < 0.15, "{owns}");
        assert!(lines[13].contains("100.0%"));
        assert!(lines[6].contains(" KiB  256 "), "{}", lines[6]);
    }

    #[test]
    fn empty_ring_prints_nothing() {
        assert_eq!(render_status(&[]), "");
    }

    #[test]
    fn loads_are_stable_and_plausible() {
        let a = simulated_load_kib("x");
        assert_eq!(a, simulated_load_kib("x"));
        assert!((60.0..140.0).contains(&a));
        assert_eq!(format_load(93.95), "93.95 KiB");
        assert_eq!(format_load(2048.0), "2.00 MiB");
    }
}
