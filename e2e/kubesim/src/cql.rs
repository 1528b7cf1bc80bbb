//! Simulated Cassandra keyspaces: their replication per DC (Cassandra 3.11's defaults), the `cqlsh -e` statements that change them, and what follows for replica placement (effective ownership, `nodetool describering`) — pure, no I/O.
use std::collections::BTreeMap;

use crate::nodetool::{RingNode, stable_hash};

/// Replication of one keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// Node-local data (`system`, `system_schema`): no ring, never replicated.
    Local,
    /// `SimpleStrategy`: the next `rf` nodes of the ring, whatever their DC.
    Simple { rf: u32 },
    /// `NetworkTopologyStrategy`: `rf` replicas in each DC listed.
    Network { per_dc: BTreeMap<String, u32> },
}

impl Replication {
    /// The CQL map as `DESCRIBE` prints it.
    fn cql(&self) -> String {
        match self {
            Replication::Local => "{'class': 'org.apache.cassandra.locator.LocalStrategy'}".into(),
            Replication::Simple { rf } => format!(
                "{{'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '{rf}'}}"
            ),
            Replication::Network { per_dc } => {
                let dcs: String = per_dc
                    .iter()
                    .map(|(dc, rf)| format!(", '{dc}': '{rf}'"))
                    .collect();
                format!("{{'class': 'org.apache.cassandra.locator.NetworkTopologyStrategy'{dcs}}}")
            }
        }
    }
}

/// The keyspaces of one Cassandra cluster (a ring), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspaces(pub BTreeMap<String, Replication>);

/// System keyspaces that are not node-local, and user keyspaces are "non-local": those are the
/// ones CassKop asks about before it scales a DC to 0.
impl Default for Keyspaces {
    /// What a fresh Cassandra 3.11 cluster has, whatever its number of DCs: the replicated
    /// system keyspaces use `SimpleStrategy`, so they place replicas in every DC.
    fn default() -> Self {
        let mut m = BTreeMap::new();
        m.insert("system".into(), Replication::Local);
        m.insert("system_schema".into(), Replication::Local);
        m.insert("system_auth".into(), Replication::Simple { rf: 1 });
        m.insert("system_distributed".into(), Replication::Simple { rf: 3 });
        m.insert("system_traces".into(), Replication::Simple { rf: 2 });
        Keyspaces(m)
    }
}

const SYSTEM_KEYSPACES: [&str; 5] = [
    "system",
    "system_schema",
    "system_auth",
    "system_distributed",
    "system_traces",
];

/// A cqlsh failure: the text cqlsh prints on stderr (exit code 2, as cqlsh does for a failed
/// statement given with `-e`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlError(pub String);

impl Keyspaces {
    /// Keyspaces whose data lives on the ring (not `LocalStrategy`), sorted.
    #[cfg(test)]
    fn non_local(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, r)| **r != Replication::Local)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Does keyspace `ks` keep replicas in `dc`, given the DCs of `ring`?
    #[cfg(test)]
    fn replicates_to(&self, ks: &str, dc: &str, ring: &[RingNode]) -> bool {
        placements(self.0.get(ks), ring)
            .iter()
            .any(|replicas| replicas.iter().any(|&i| ring[i].dc == dc))
    }

    /// Run the statements of `cqlsh -e "<script>"`; what cqlsh prints on stdout.
    pub fn execute(&mut self, script: &str) -> Result<String, CqlError> {
        let mut out = String::new();
        for stmt in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            out.push_str(&self.statement(stmt)?);
        }
        Ok(out)
    }

    fn statement(&mut self, stmt: &str) -> Result<String, CqlError> {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let up: Vec<&str> = upper.iter().map(String::as_str).collect();
        match up.as_slice() {
            ["DESCRIBE" | "DESC", "KEYSPACES"] => Ok(self.describe_keyspaces()),
            ["DESCRIBE" | "DESC", "KEYSPACE", _] => {
                let ks = unquote(words[2]);
                let r = self
                    .0
                    .get(&ks)
                    .ok_or_else(|| CqlError(format!("'Keyspace '{ks}' not found'")))?;
                Ok(format!(
                    "\nCREATE KEYSPACE {ks} WITH replication = {} AND durable_writes = true;\n\n",
                    r.cql()
                ))
            }
            ["ALTER", "KEYSPACE", _, "WITH", ..] => {
                let ks = unquote(words[2]);
                let r = parse_with(stmt, &words[..4])?;
                match self.0.get(&ks) {
                    None => Err(CqlError(format!(
                        "<stdin>:1:ConfigurationException: <ErrorMessage code=2300 [Query invalid because of configuration issue] message=\"Cannot update non existing keyspace '{ks}'.\">"
                    ))),
                    Some(Replication::Local) => Err(CqlError(format!(
                        "<stdin>:1:Unauthorized: Error from server: code=2100 [Unauthorized] message=\"{ks} keyspace is not user-modifiable.\""
                    ))),
                    Some(_) => {
                        self.0.insert(ks, r);
                        Ok(String::new())
                    }
                }
            }
            ["CREATE", "KEYSPACE", ..] => {
                let (skip, if_not_exists) = if up.get(2..5) == Some(&["IF", "NOT", "EXISTS"][..]) {
                    (5, true)
                } else {
                    (2, false)
                };
                let ks = words
                    .get(skip)
                    .map(|w| unquote(w))
                    .ok_or_else(|| syntax_error(stmt))?;
                if up.get(skip + 1) != Some(&"WITH") {
                    return Err(syntax_error(stmt));
                }
                let r = parse_with(stmt, &words[..skip + 2])?;
                if self.0.contains_key(&ks) {
                    if if_not_exists {
                        return Ok(String::new());
                    }
                    return Err(CqlError(format!(
                        "<stdin>:1:AlreadyExists: Keyspace '{ks}' already exists"
                    )));
                }
                self.0.insert(ks, r);
                Ok(String::new())
            }
            _ => Err(syntax_error(stmt)),
        }
    }

    fn describe_keyspaces(&self) -> String {
        let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        format!("\n{}\n\n", names.join("  "))
    }
}

fn syntax_error(stmt: &str) -> CqlError {
    let first = stmt.split_whitespace().next().unwrap_or_default();
    CqlError(format!(
        "<stdin>:1:SyntaxException: line 1:0 no viable alternative at input '{first}' ([{first}]...)"
    ))
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

/// The replication map after `WITH replication =` (the words before it already matched).
fn parse_with(stmt: &str, head: &[&str]) -> Result<Replication, CqlError> {
    let rest = stmt
        .splitn(head.len() + 1, char::is_whitespace)
        .last()
        .unwrap_or_default()
        .trim();
    let rest = rest
        .strip_prefix("replication")
        .or_else(|| rest.strip_prefix("REPLICATION"))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('='))
        .map(str::trim)
        .ok_or_else(|| syntax_error(stmt))?;
    let body = rest
        .strip_prefix('{')
        .and_then(|r| r.split_once('}'))
        .map(|(b, _)| b)
        .ok_or_else(|| syntax_error(stmt))?;
    let mut map = BTreeMap::new();
    for pair in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once(':').ok_or_else(|| syntax_error(stmt))?;
        let lit = |s: &str| s.trim().trim_matches('\'').to_string();
        map.insert(lit(k), lit(v));
    }
    let config_error = |m: String| {
        CqlError(format!(
            "<stdin>:1:ConfigurationException: <ErrorMessage code=2300 [Query invalid because of configuration issue] message=\"{m}\">"
        ))
    };
    let class = map
        .remove("class")
        .ok_or_else(|| config_error("Missing replication strategy class".into()))?;
    let factor = |v: &str| {
        v.parse::<u32>().map_err(|_| {
            config_error(format!(
                "Replication factor must be numeric and non-negative; found {v}"
            ))
        })
    };
    match class.rsplit('.').next().unwrap_or_default() {
        "SimpleStrategy" => {
            let rf = map.remove("replication_factor").ok_or_else(|| {
                config_error("SimpleStrategy requires a replication_factor strategy option.".into())
            })?;
            if let Some(k) = map.keys().next() {
                return Err(config_error(format!(
                    "Unrecognized strategy option {{{k}}} passed to SimpleStrategy for keyspace"
                )));
            }
            Ok(Replication::Simple { rf: factor(&rf)? })
        }
        "NetworkTopologyStrategy" => {
            let mut per_dc = BTreeMap::new();
            for (dc, rf) in map {
                per_dc.insert(dc, factor(&rf)?);
            }
            Ok(Replication::Network { per_dc })
        }
        other => Err(config_error(format!(
            "Unable to find replication strategy class 'org.apache.cassandra.locator.{other}'"
        ))),
    }
}

/// Ring order: nodes by their (simulated) first token, a stable hash of the host ID.
fn ring_order(ring: &[RingNode]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..ring.len()).collect();
    idx.sort_by_key(|&i| (stable_hash(&ring[i].host_id), ring[i].host_id.clone()));
    idx
}

/// For each node's primary range (in ring order), the nodes holding a replica of it.
fn placements(r: Option<&Replication>, ring: &[RingNode]) -> Vec<Vec<usize>> {
    let order = ring_order(ring);
    let n = order.len();
    (0..n)
        .map(|start| {
            let walk = (0..n).map(|k| order[(start + k) % n]);
            match r {
                None | Some(Replication::Local) => vec![],
                Some(Replication::Simple { rf }) => walk.take(*rf as usize).collect(),
                Some(Replication::Network { per_dc }) => {
                    let mut taken: BTreeMap<&str, u32> = BTreeMap::new();
                    walk.filter(|&i| {
                        let dc = ring[i].dc.as_str();
                        let want = per_dc.get(dc).copied().unwrap_or(0);
                        let have = taken.entry(dc).or_insert(0);
                        if *have < want {
                            *have += 1;
                            true
                        } else {
                            false
                        }
                    })
                    .collect()
                }
            }
        })
        .collect()
}

/// Effective ownership of each node of `ring` (same order) for keyspace replication `r`: the
/// share of the ring's data it holds a replica of. Node weights (unequal vnode shares) are
/// those of `nodetool::effective_owns`: with one replica per DC, a DC's nodes sum to 100 %.
pub fn effective_ownership(r: &Replication, ring: &[RingNode]) -> Vec<f64> {
    let weight = |n: &RingNode| 0.9 + (stable_hash(&n.host_id) % 200) as f64 / 1000.0;
    let share = |members: &[usize], rf: u32| -> Vec<(usize, f64)> {
        let total: f64 = members.iter().map(|&i| weight(&ring[i])).sum();
        // As many replicas as nodes (or more): every node holds everything.
        let all = rf as usize >= members.len();
        members
            .iter()
            .map(|&i| {
                let o = f64::from(rf) * weight(&ring[i]) / total;
                (i, if all { 1.0 } else { o.min(1.0) })
            })
            .collect()
    };
    let mut owns = vec![0.0; ring.len()];
    match r {
        Replication::Local => {}
        Replication::Simple { rf } => {
            let all: Vec<usize> = (0..ring.len()).collect();
            for (i, o) in share(&all, *rf) {
                owns[i] = o;
            }
        }
        Replication::Network { per_dc } => {
            for (dc, rf) in per_dc {
                let members: Vec<usize> = (0..ring.len()).filter(|&i| ring[i].dc == *dc).collect();
                for (i, o) in share(&members, *rf) {
                    owns[i] = o;
                }
            }
        }
    }
    owns
}

/// The keyspace whose effective ownership `nodetool status` shows without a keyspace argument,
/// as Cassandra picks it: the user keyspaces if they all replicate alike, else none (ownership
/// then is meaningless); `system_traces` when there is no user keyspace.
pub fn status_keyspace(ks: &Keyspaces) -> Result<&str, String> {
    let user: Vec<&String> =
        ks.0.keys()
            .filter(|k| !SYSTEM_KEYSPACES.contains(&k.as_str()))
            .collect();
    match user.split_first() {
        None => Ok("system_traces"),
        Some((first, rest)) => {
            let r = &ks.0[*first];
            if rest.iter().all(|k| ks.0[*k] == *r) {
                Ok(first.as_str())
            } else {
                Err("Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless".into())
            }
        }
    }
}

/// `nodetool describering <ks>`: one token range per node (the simulation's coarse ring), with
/// its replicas' endpoint details, laid out as Cassandra prints them.
pub fn describe_ring(ks: &Keyspaces, keyspace: &str, ring: &[RingNode]) -> Result<String, String> {
    let r = ks
        .0
        .get(keyspace)
        .ok_or_else(|| format!("nodetool: The keyspace {keyspace}, does not exist\nSee 'nodetool help' or 'nodetool help <command>'.\n"))?;
    if *r == Replication::Local {
        return Err(format!(
            "nodetool: There is no ring for the keyspace: {keyspace}\nSee 'nodetool help' or 'nodetool help <command>'.\n"
        ));
    }
    let order = ring_order(ring);
    let token = |i: usize| stable_hash(&ring[i].host_id) as i64;
    let mut out = format!(
        "Schema Version:{:08x}-0000-3000-8000-{:012x}\nTokenRange: \n",
        stable_hash(keyspace) as u32,
        stable_hash(&format!("{r:?}")) & 0xffff_ffff_ffff
    );
    for (pos, replicas) in placements(Some(r), ring).iter().enumerate() {
        let start = token(order[(pos + order.len() - 1) % order.len()]);
        let end = token(order[pos]);
        let eps: Vec<&str> = replicas.iter().map(|&i| ring[i].address.as_str()).collect();
        let details: Vec<String> = replicas
            .iter()
            .map(|&i| {
                format!(
                    "EndpointDetails(host:{}, datacenter:{}, rack:{})",
                    ring[i].address, ring[i].dc, ring[i].rack
                )
            })
            .collect();
        out.push_str(&format!(
            "\tTokenRange(start_token:{start}, end_token:{end}, endpoints:[{e}], rpc_endpoints:[{e}], endpoint_details:[{d}])\n",
            e = eps.join(", "),
            d = details.join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dc: &str, id: &str) -> RingNode {
        RingNode {
            dc: dc.into(),
            rack: "rack1".into(),
            address: format!("10.0.0.{}", id.len() + dc.len()),
            up: true,
            load_kib: 80.0,
            tokens: 256,
            host_id: format!("{dc}-{id}"),
        }
    }

    #[test]
    fn defaults_replicate_system_keyspaces_everywhere() {
        let ks = Keyspaces::default();
        let ring = vec![node("dc1", "a"), node("dc2", "b")];
        assert_eq!(
            ks.non_local(),
            vec!["system_auth", "system_distributed", "system_traces"]
        );
        for k in ks.non_local() {
            assert!(ks.replicates_to(&k, "dc2", &ring), "{k}");
        }
        assert!(!ks.replicates_to("system", "dc2", &ring));
    }

    #[test]
    fn alter_to_one_dc_stops_replication_elsewhere() {
        let mut ks = Keyspaces::default();
        let ring = vec![node("dc1", "a"), node("dc2", "b")];
        ks.execute("ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': '1'}")
            .unwrap();
        assert!(!ks.replicates_to("system_auth", "dc2", &ring));
        assert!(ks.replicates_to("system_auth", "dc1", &ring));
        let owns = effective_ownership(&ks.0["system_auth"], &ring);
        assert_eq!(owns, vec![1.0, 0.0]);
    }

    #[test]
    fn create_describe_and_errors_look_like_cqlsh() {
        let mut ks = Keyspaces::default();
        ks.execute("CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2};")
            .unwrap();
        assert!(
            ks.execute("DESCRIBE KEYSPACES")
                .unwrap()
                .contains("app  system")
        );
        let e = ks.execute("CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}").unwrap_err();
        assert!(e.0.contains("AlreadyExists"), "{e:?}");
        let e = ks.execute("ALTER KEYSPACE nope WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").unwrap_err();
        assert!(
            e.0.contains("Cannot update non existing keyspace 'nope'"),
            "{e:?}"
        );
        let e = ks.execute("SELEKT * FROM x").unwrap_err();
        assert!(e.0.contains("SyntaxException"), "{e:?}");
        let e = ks.execute("ALTER KEYSPACE system WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").unwrap_err();
        assert!(e.0.contains("not user-modifiable"), "{e:?}");
        let e = ks.execute("ALTER KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 'x'}").unwrap_err();
        assert!(e.0.contains("must be numeric"), "{e:?}");
    }

    #[test]
    fn status_keyspace_follows_cassandra() {
        let mut ks = Keyspaces::default();
        assert_eq!(status_keyspace(&ks), Ok("system_traces"));
        ks.execute(
            "CREATE KEYSPACE a WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}",
        )
        .unwrap();
        assert_eq!(status_keyspace(&ks), Ok("a"));
        ks.execute(
            "CREATE KEYSPACE b WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2}",
        )
        .unwrap();
        assert!(status_keyspace(&ks).is_err());
    }

    #[test]
    fn describering_names_each_replicas_dc() {
        let ks = Keyspaces::default();
        let ring = vec![node("dc1", "a"), node("dc2", "b")];
        let out = describe_ring(&ks, "system_traces", &ring).unwrap();
        assert!(out.contains("datacenter:dc2"), "{out}");
        assert!(describe_ring(&ks, "system", &ring).is_err());
    }
}
