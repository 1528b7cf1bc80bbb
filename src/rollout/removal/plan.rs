//! What to do next about each site that left `spec.override`, and how that fits the rollout of
//! the sites taking part (one site in progress at a time). Pure.

use crate::rollout::plan::{self, Action, Plan, SiteAccess, SiteInput, SiteVerdict};

/// Prefix of the applied hash we record for a scale-down write (`scale-down:<dc>`): tells a
/// refusal of our scale-down from anything else CassKop put back.
pub const SCALE_DOWN_MARK: &str = "scale-down:";

/// What the MultiCasskop asks for a site that left `override`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `deleteCassandraCluster: true`: scale its DCs to 0, then delete it.
    Delete,
    /// Otherwise: release it (owner labels removed), nothing deleted.
    Release,
}

/// Our CassandraCluster found at a leaving site (it carries our owner labels for that site).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeavingCluster {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// Each DC of `spec.topology` with its nodes per rack (its own, else the spec's, else 1).
    pub dcs: Vec<(String, i64)>,
    pub phase: Option<String>,
    pub last_cluster_action: Option<String>,
    pub last_cluster_action_status: Option<String>,
    pub deleting: bool,
}

/// Our last removal write to a leaving site, from its status entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovalMark {
    /// `scale-down:<dc>` for a scale-down; any other hash is a rollout write made before the
    /// site left.
    pub hash: String,
    /// The CassandraCluster's generation right after that write.
    pub generation: i64,
}

/// One site that left `override`, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeavingInput {
    pub name: String,
    pub access: SiteAccess,
    /// `None`: no CassandraCluster of ours there (when `access` is `Ok`).
    pub found: Option<LeavingCluster>,
    /// Our last write to the site (a rollout write before it left, or a removal write).
    pub mark: Option<RemovalMark>,
}

/// A write the removal makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Set `nodesPerRacks: 0` on DC `dc` (CassKop decommissions its nodes).
    ScaleDown { dc: String },
    /// Delete the CassandraCluster.
    Delete,
    /// Remove our owner labels, annotate who released it and when.
    Release,
}

/// Where a leaving site stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A write to make now.
    Act(Step),
    /// CassKop or the API server is working on our last write: wait for it.
    Busy(String),
    /// CassKop refused to scale DC `dc` to 0 (`CorrectCRDConfig`): keyspaces still replicate
    /// there. Retried by itself, with backoff.
    Refused { dc: String, reason: String },
    /// Cannot go on until something outside changes. `holds`: we wrote there and may have left
    /// it in progress, so no other site starts meanwhile.
    Stuck { reason: String, holds: bool },
    /// Nothing of ours left there.
    Done,
}

impl Stage {
    /// Still something to do or wait for (that keeps the other sites waiting).
    pub fn pending(&self) -> bool {
        match self {
            Stage::Done => false,
            Stage::Stuck { holds, .. } => *holds,
            _ => true,
        }
    }
}

fn opt(s: Option<&String>) -> &str {
    s.map_or("-", String::as_str)
}

fn casskop_state(c: &LeavingCluster) -> String {
    format!(
        "phase {}, {} {}",
        opt(c.phase.as_ref()),
        opt(c.last_cluster_action.as_ref()),
        opt(c.last_cluster_action_status.as_ref())
    )
}

/// Where leaving site `site` stands. `deleting`: the MultiCasskop itself is being deleted (its
/// whole ring goes: no scale-down first).
pub fn stage(site: &LeavingInput, mode: Mode, deleting: bool) -> Stage {
    let name = &site.name;
    let why_unreachable = match &site.access {
        SiteAccess::Ok | SiteAccess::Rejected { .. } => None,
        SiteAccess::NotConfigured => Some(format!(
            "site {name} is not a configured cluster (no --local/--remote flag or ClientConfig names it)"
        )),
        SiteAccess::Unavailable { reason } | SiteAccess::Unlisted { reason } => {
            Some(format!("site {name} is unreachable: {reason}"))
        }
    };
    if let Some(why) = why_unreachable {
        // Never written: nothing of ours can be there.
        let Some(mark) = &site.mark else {
            return Stage::Done;
        };
        return Stage::Stuck {
            reason: format!(
                "{why}; it left spec.override and its CassandraCluster is neither {} until it is back",
                match mode {
                    Mode::Delete => "scaled down nor deleted",
                    Mode::Release => "released",
                }
            ),
            // While the MultiCasskop is deleted, a site we wrote to keeps the finalizer, as
            // any site taking part would; otherwise only a scale-down we started holds.
            holds: deleting || mark.hash.starts_with(SCALE_DOWN_MARK),
        };
    }
    let Some(c) = &site.found else {
        return Stage::Done;
    };
    let cc = format!("{}/{}", c.namespace, c.name);
    if c.deleting {
        return Stage::Busy(format!(
            "site {name}: waiting for CassandraCluster {cc} to be gone (deletion requested)"
        ));
    }
    match mode {
        Mode::Release => Stage::Act(Step::Release),
        Mode::Delete if deleting => Stage::Act(Step::Delete),
        Mode::Delete => scale_down_then_delete(name, &cc, c, site.mark.as_ref()),
    }
}

/// Scale each DC to 0, one at a time from the last, each once CassKop settled on the previous
/// write; then delete.
fn scale_down_then_delete(
    name: &str,
    cc: &str,
    c: &LeavingCluster,
    mark: Option<&RemovalMark>,
) -> Stage {
    let ours = mark.filter(|m| m.hash.starts_with(SCALE_DOWN_MARK));
    let past_our_write = ours.is_none_or(|m| c.generation > m.generation);
    let action = c.last_cluster_action.as_deref();
    let status = c.last_cluster_action_status.as_deref();
    // Last DC first: CassKop asks about keyspaces only for the first DC of the topology at 0
    // nodes (`FindDCWithNodesTo0`), and lets it through unasked once that DC has no pod left.
    // Going from the last DC to the first, the DC just set to 0 is always that first one, so
    // each scale-down is checked; first to last, the second DC would go to 0 unchecked.
    let next_dc = c
        .dcs
        .iter()
        .rev()
        .find(|(_, n)| *n > 0)
        .map(|(dc, _)| dc.clone());
    // Refused: CassKop put the topology back after our scale-down; or we tried again and
    // CassKop has not answered yet (still blocked until it accepts, not a new stage each try).
    if let Some(m) = ours
        && action == Some("CorrectCRDConfig")
        && (!past_our_write || next_dc.is_some())
    {
        let asked = &m.hash[SCALE_DOWN_MARK.len()..];
        return Stage::Refused {
            dc: asked.to_string(),
            reason: format!(
                "site {name} left spec.override: CassKop refused to scale DC {asked} of \
                 CassandraCluster {cc} to 0 (spec.topology.dc[{asked}].nodesPerRacks: 0 put \
                 back, lastClusterAction CorrectCRDConfig): keyspaces still replicate there. Change their replication so that none uses DC {asked}, \
                 e.g. `kubectl exec <a cassandra pod> -- cqlsh -e \"ALTER KEYSPACE <keyspace> \
                 WITH replication = {{'class': 'NetworkTopologyStrategy', '<another dc>': '3'}}\"` \
                 for each of them (system_auth, system_distributed and system_traces too); the \
                 scale-down is retried by itself and goes on once CassKop accepts it"
            ),
        };
    }
    if !past_our_write {
        return Stage::Busy(format!(
            "site {name}: waiting for CassKop to pick up the scale-down of CassandraCluster {cc} \
             ({})",
            casskop_state(c)
        ));
    }
    if status == Some("Error") {
        return Stage::Stuck {
            reason: format!(
                "site {name}: CassKop's action {} failed on CassandraCluster {cc} \
                 (lastClusterActionStatus Error) while the site leaves: fix it at the site",
                action.unwrap_or("-")
            ),
            holds: true,
        };
    }
    let settled = c.phase.as_deref() == Some("Running") && status == Some("Done");
    if !settled {
        return Stage::Busy(format!(
            "site {name}: CassKop is working on CassandraCluster {cc} ({})",
            casskop_state(c)
        ));
    }
    match next_dc {
        Some(dc) => Stage::Act(Step::ScaleDown { dc }),
        None => Stage::Act(Step::Delete),
    }
}

/// What a stage says in the status (the site's message, the overall action's reason).
pub fn describe(site: &str, stage: &Stage, cc: Option<&str>) -> String {
    let cc = cc.unwrap_or("its CassandraCluster");
    match stage {
        Stage::Act(Step::ScaleDown { dc }) => format!(
            "site {site} left spec.override: scaling DC {dc} of CassandraCluster {cc} to 0 \
             (CassKop decommissions its nodes), then it is deleted"
        ),
        Stage::Act(Step::Delete) => {
            format!("site {site} left spec.override: deleting CassandraCluster {cc}")
        }
        Stage::Act(Step::Release) => format!(
            "site {site} left spec.override: releasing CassandraCluster {cc} \
             (deleteCassandraCluster is not true: nothing is deleted)"
        ),
        Stage::Busy(reason) | Stage::Refused { reason, .. } | Stage::Stuck { reason, .. } => {
            reason.clone()
        }
        Stage::Done => format!("site {site} left spec.override: nothing of ours left there"),
    }
}

/// The removal's verdict on every leaving site, and the one removal write to make now (if the
/// rollout of the sites taking part lets it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// One per leaving site, in status order: its stage and whether it waits for another site.
    pub stages: Vec<(String, Stage, bool)>,
    /// The leaving site acted on or waited for, with its stage.
    pub current: Option<(String, Stage)>,
}

/// While a removal waits for a site in progress, that site gets no newer desired object (the
/// planner otherwise lets the site in progress take one): a newer object leaves the leaving
/// site out, with `autoSeedList` its seeds too. A site where CassKop reported Error still gets
/// it: a new spec is the way out of an Error, and the removal waits for that site anyway.
fn hold_newer_object(main: Plan, sites: &[SiteInput]) -> Plan {
    let Action::Apply { site } = &main.action else {
        return main;
    };
    let Some(s) = sites.iter().find(|s| &s.name == site) else {
        return main;
    };
    let error = s
        .observed
        .as_ref()
        .is_some_and(|o| o.last_cluster_action_status.as_deref() == Some("Error"));
    if error || !plan::maybe_in_progress(s) {
        return main;
    }
    let reason = format!(
        "site {site}: CassKop is working on it; its newer change waits until the sites that \
         left spec.override are removed"
    );
    let verdicts = main
        .verdicts
        .into_iter()
        .map(|(n, v)| {
            if n == *site {
                let reason = reason.clone();
                (n, SiteVerdict::InProgress { reason })
            } else {
                (n, v)
            }
        })
        .collect();
    Plan {
        action: Action::Wait {
            site: site.clone(),
            reason,
        },
        verdicts,
        deleting: main.deleting,
    }
}

/// Fit the leaving sites into the plan of the sites taking part. One site in progress at a
/// time, counting leaving sites: while a site taking part is (or may be) in progress, removals
/// wait; otherwise the first leaving site with something pending goes first and the rollout
/// waits for it (the remaining sites change only once the removal is over). A leaving site that
/// cannot be reached and was never left in progress by us is only reported.
///
/// Seeds (`autoSeedList`): the desired objects of the sites that stay leave the leaving site's
/// seeds out at once, but they reach those sites only after the removal, one site at a time:
/// the leaving site's seeds stay on the others until its nodes are decommissioned and its
/// CassandraCluster deleted. Dropping them earlier would restart every other site (CassKop's
/// UpdateSeedList) while the leaving site still holds data and decommissions, two sites in
/// progress at once, and for nothing if CassKop refuses the scale-down; keeping them a little
/// longer costs nothing: a node reads its seeds at start only, and Cassandra skips a seed that
/// no longer answers as long as another does (each site keeps its own seeds).
pub fn combine(
    main: Plan,
    sites: &[SiteInput],
    leaving: &[LeavingInput],
    mode: Mode,
) -> (Plan, Removal) {
    let stages: Vec<(String, Stage)> = leaving
        .iter()
        .map(|l| (l.name.clone(), stage(l, mode, main.deleting)))
        .collect();
    let busy = sites.iter().any(plan::maybe_in_progress);
    let first = stages.iter().position(|(_, s)| s.pending());
    let (Some(i), false) = (first, busy) else {
        let waiting = first.is_some();
        let stages = stages
            .into_iter()
            .map(|(n, s)| {
                let w = waiting && s.pending();
                (n, s, w)
            })
            .collect();
        let main = if waiting {
            hold_newer_object(main, sites)
        } else {
            main
        };
        return (
            main,
            Removal {
                stages,
                current: None,
            },
        );
    };
    let (site, stage) = stages[i].clone();
    let reason = describe(&site, &stage, None);
    let action = match &stage {
        Stage::Refused { .. } | Stage::Stuck { .. } => Action::Blocked {
            site: site.clone(),
            reason: reason.clone(),
        },
        _ => Action::Wait {
            site: site.clone(),
            reason: reason.clone(),
        },
    };
    let held = match &main.action {
        Action::Apply { site } | Action::Delete { site } => Some(site.clone()),
        _ => None,
    };
    let verdicts = main
        .verdicts
        .into_iter()
        .map(|(n, v)| match (&held, &v) {
            (Some(h), SiteVerdict::InProgress { .. }) if *h == n => (n, SiteVerdict::Waiting),
            _ => (n, v),
        })
        .collect();
    let stages = stages
        .into_iter()
        .enumerate()
        .map(|(j, (n, s))| {
            let w = j != i && s.pending();
            (n, s, w)
        })
        .collect();
    (
        Plan {
            action,
            verdicts,
            deleting: main.deleting,
        },
        Removal {
            stages,
            current: Some((site, stage)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::PlanInput;
    use crate::rollout::plan::fixtures::applied_site;

    fn cluster(dcs: &[(&str, i64)], generation: i64, state: (&str, &str, &str)) -> LeavingCluster {
        LeavingCluster {
            namespace: "ns".into(),
            name: "cc".into(),
            generation,
            dcs: dcs.iter().map(|(d, n)| ((*d).to_string(), *n)).collect(),
            phase: Some(state.0.into()),
            last_cluster_action: Some(state.1.into()),
            last_cluster_action_status: Some(state.2.into()),
            deleting: false,
        }
    }

    fn leaving(found: Option<LeavingCluster>, mark: Option<(&str, i64)>) -> LeavingInput {
        LeavingInput {
            name: "d".into(),
            access: SiteAccess::Ok,
            found,
            mark: mark.map(|(h, g)| RemovalMark {
                hash: h.into(),
                generation: g,
            }),
        }
    }

    const RUNNING: (&str, &str, &str) = ("Running", "Initializing", "Done");

    #[test]
    fn delete_mode_scales_each_dc_to_zero_then_deletes() {
        let cases: Vec<(LeavingInput, Stage)> = vec![
            // Running as the rollout left it: scale its first DC down.
            (
                leaving(Some(cluster(&[("dc4", 1)], 3, RUNNING)), Some(("h1", 2))),
                Stage::Act(Step::ScaleDown { dc: "dc4".into() }),
            ),
            // Our scale-down not picked up yet.
            (
                leaving(
                    Some(cluster(&[("dc4", 0)], 5, RUNNING)),
                    Some(("scale-down:dc4", 5)),
                ),
                Stage::Busy(String::new()),
            ),
            // CassKop decommissioning.
            (
                leaving(
                    Some(cluster(
                        &[("dc4", 0)],
                        6,
                        ("Pending", "ScaleDown", "Ongoing"),
                    )),
                    Some(("scale-down:dc4", 5)),
                ),
                Stage::Busy(String::new()),
            ),
            // A second DC once the first is done.
            (
                leaving(
                    Some(cluster(
                        &[("dc4", 0), ("dc5", 2)],
                        7,
                        ("Running", "ScaleDown", "Done"),
                    )),
                    Some(("scale-down:dc4", 5)),
                ),
                Stage::Act(Step::ScaleDown { dc: "dc5".into() }),
            ),
            // Every DC at 0 and settled: delete.
            (
                leaving(
                    Some(cluster(&[("dc4", 0)], 7, ("Running", "ScaleDown", "Done"))),
                    Some(("scale-down:dc4", 5)),
                ),
                Stage::Act(Step::Delete),
            ),
            // Gone.
            (leaving(None, Some(("scale-down:dc4", 5))), Stage::Done),
        ];
        for (input, want) in cases {
            let got = stage(&input, Mode::Delete, false);
            match (&got, &want) {
                (Stage::Busy(_), Stage::Busy(_)) => {}
                _ => assert_eq!(got, want, "{input:?}"),
            }
        }
    }

    #[test]
    fn a_two_dc_site_is_scaled_down_from_its_last_dc_so_casskop_checks_each() {
        let both = leaving(
            Some(cluster(&[("dc4", 1), ("dc5", 1)], 3, RUNNING)),
            Some(("h1", 2)),
        );
        assert_eq!(
            stage(&both, Mode::Delete, false),
            Stage::Act(Step::ScaleDown { dc: "dc5".into() })
        );
        let last_done = leaving(
            Some(cluster(
                &[("dc4", 1), ("dc5", 0)],
                7,
                ("Running", "ScaleDown", "Done"),
            )),
            Some(("scale-down:dc5", 5)),
        );
        assert_eq!(
            stage(&last_done, Mode::Delete, false),
            Stage::Act(Step::ScaleDown { dc: "dc4".into() })
        );
    }

    #[test]
    fn a_scale_down_casskop_put_back_is_refused_with_what_to_do() {
        let input = leaving(
            Some(cluster(
                &[("dc4", 1)],
                6,
                ("Running", "CorrectCRDConfig", "Done"),
            )),
            Some(("scale-down:dc4", 5)),
        );
        let Stage::Refused { dc, reason } = stage(&input, Mode::Delete, false) else {
            panic!("not refused");
        };
        assert_eq!(dc, "dc4");
        // Tried again, CassKop not answered yet: still refused, not a new stage per try.
        let retried = leaving(
            Some(cluster(
                &[("dc4", 0)],
                7,
                ("Running", "CorrectCRDConfig", "Done"),
            )),
            Some(("scale-down:dc4", 7)),
        );
        assert!(matches!(
            stage(&retried, Mode::Delete, false),
            Stage::Refused { .. }
        ));
        for part in [
            "site d left spec.override",
            "CassandraCluster ns/cc",
            "CorrectCRDConfig",
            "keyspaces still replicate there",
            "ALTER KEYSPACE",
            "retried by itself",
        ] {
            assert!(reason.contains(part), "{part}: {reason}");
        }
        // A CorrectCRDConfig older than any scale-down of ours is not a refusal of it.
        let old = leaving(
            Some(cluster(
                &[("dc4", 1)],
                6,
                ("Running", "CorrectCRDConfig", "Done"),
            )),
            Some(("h1", 2)),
        );
        assert_eq!(
            stage(&old, Mode::Delete, false),
            Stage::Act(Step::ScaleDown { dc: "dc4".into() })
        );
    }

    #[test]
    fn release_mode_releases_and_deleting_the_multicasskop_skips_the_scale_down() {
        let input = leaving(Some(cluster(&[("dc4", 1)], 3, RUNNING)), Some(("h1", 2)));
        assert_eq!(
            stage(&input, Mode::Release, false),
            Stage::Act(Step::Release)
        );
        assert_eq!(stage(&input, Mode::Delete, true), Stage::Act(Step::Delete));
    }

    #[test]
    fn an_unreachable_leaving_site_is_never_acted_on() {
        let mut input = leaving(None, Some(("h1", 2)));
        input.access = SiteAccess::NotConfigured;
        let Stage::Stuck { reason, holds } = stage(&input, Mode::Delete, false) else {
            panic!("not stuck");
        };
        assert!(
            reason.contains("site d is not a configured cluster"),
            "{reason}"
        );
        assert!(!holds, "reported, but holds nothing it never started");
        input.mark = Some(RemovalMark {
            hash: "scale-down:dc4".into(),
            generation: 5,
        });
        assert!(matches!(
            stage(&input, Mode::Delete, false),
            Stage::Stuck { holds: true, .. }
        ));
        input.mark = Some(RemovalMark {
            hash: "h1".into(),
            generation: 2,
        });
        assert!(
            matches!(
                stage(&input, Mode::Delete, true),
                Stage::Stuck { holds: true, .. }
            ),
            "a deletion keeps its finalizer for a leaving site it cannot see"
        );
        input.mark = None;
        assert_eq!(stage(&input, Mode::Delete, false), Stage::Done);
    }

    fn main_plan(sites: &[SiteInput]) -> Plan {
        plan::plan(&PlanInput {
            sites: sites.to_vec(),
            deleting: false,
            delete_cassandra_cluster: true,
        })
    }

    #[test]
    fn a_removal_goes_before_the_rollout_and_waits_for_a_site_in_progress() {
        let removing = [leaving(
            Some(cluster(&[("dc4", 1)], 3, RUNNING)),
            Some(("h1", 2)),
        )];
        // A site to create: the removal goes first, the creation waits.
        let mut sites = vec![applied_site("a", "Running", "Done")];
        sites.push(SiteInput {
            observed: None,
            applied: None,
            ..applied_site("n", "-", "-")
        });
        let (planned, removal) = combine(main_plan(&sites), &sites, &removing, Mode::Delete);
        assert!(matches!(&planned.action, Action::Wait { site, .. } if site == "d"));
        assert_eq!(planned.verdicts[1], ("n".into(), SiteVerdict::Waiting));
        assert_eq!(
            removal.current,
            Some(("d".into(), Stage::Act(Step::ScaleDown { dc: "dc4".into() })))
        );
        // A site in progress: the removal waits for it.
        let busy = vec![applied_site("a", "Pending", "Ongoing")];
        let main = main_plan(&busy);
        let (planned, removal) = combine(main.clone(), &busy, &removing, Mode::Delete);
        assert_eq!(planned, main);
        assert_eq!(removal.current, None);
        assert!(removal.stages[0].2, "the leaving site is shown waiting");
    }

    #[test]
    fn a_site_in_progress_gets_no_newer_object_while_a_removal_waits_unless_in_error() {
        let removing = [leaving(
            Some(cluster(&[("dc4", 1)], 3, RUNNING)),
            Some(("h1", 2)),
        )];
        let mut working = applied_site("a", "Pending", "Ongoing");
        working.desired_hash = "h2".into();
        let sites = vec![working.clone()];
        assert_eq!(main_plan(&sites).action, Action::Apply { site: "a".into() });
        let (planned, removal) = combine(main_plan(&sites), &sites, &removing, Mode::Delete);
        assert!(
            matches!(&planned.action, Action::Wait { site, reason }
                if site == "a" && reason.contains("waits until the sites that left")),
            "{planned:?}"
        );
        assert_eq!(removal.current, None);
        let mut failed = working;
        if let Some(o) = failed.observed.as_mut() {
            o.last_cluster_action_status = Some("Error".into());
        }
        let sites = vec![failed];
        let (planned, _) = combine(main_plan(&sites), &sites, &removing, Mode::Delete);
        assert_eq!(planned.action, Action::Apply { site: "a".into() });
    }

    #[test]
    fn a_refused_removal_blocks_the_rollout_and_a_finished_one_lets_it_go() {
        let sites = vec![applied_site("a", "Running", "Done")];
        let refused = [leaving(
            Some(cluster(
                &[("dc4", 1)],
                6,
                ("Running", "CorrectCRDConfig", "Done"),
            )),
            Some(("scale-down:dc4", 5)),
        )];
        let (planned, _) = combine(main_plan(&sites), &sites, &refused, Mode::Delete);
        assert!(matches!(&planned.action, Action::Blocked { site, reason }
            if site == "d" && reason.contains("ALTER KEYSPACE")));
        let gone = [leaving(None, Some(("scale-down:dc4", 5)))];
        let (planned, removal) = combine(main_plan(&sites), &sites, &gone, Mode::Delete);
        assert_eq!(planned.action, Action::Converged);
        assert_eq!(removal.stages[0].1, Stage::Done);
    }

    #[test]
    fn a_deletion_keeps_its_finalizer_until_the_leaving_sites_are_gone_too() {
        let removing = [leaving(
            Some(cluster(&[("dc4", 1)], 3, RUNNING)),
            Some(("h1", 2)),
        )];
        let all_gone = Plan {
            action: Action::ReleaseFinalizer,
            verdicts: vec![("a".into(), SiteVerdict::Deleted)],
            deleting: true,
        };
        let (planned, removal) = combine(all_gone.clone(), &[], &removing, Mode::Delete);
        assert!(matches!(&planned.action, Action::Wait { site, .. } if site == "d"));
        assert_eq!(
            removal.current,
            Some(("d".into(), Stage::Act(Step::Delete))),
            "no scale-down when the whole federation goes"
        );
        let gone = [leaving(None, Some(("h1", 2)))];
        let (planned, _) = combine(all_gone, &[], &gone, Mode::Delete);
        assert_eq!(planned.action, Action::ReleaseFinalizer);
    }
}
