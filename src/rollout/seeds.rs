//! `spec.autoSeedList` in a reconcile: the computed seed list written into every site's desired
//! CassandraCluster (observe), and each site's list shown in `status.sites[]` (report).

use crate::api::{MultiCasskop, MultiCasskopStatus};
use crate::rollout::observe::{Observation, SiteFacts};
use crate::rollout::plan::SiteAccess;
use crate::rollout::plan::seeds::{self, SeedError, SiteCluster};

/// Computes the federation's seed list from the desired CassandraClusters of `facts` (the
/// sites taking part, in rollout order) and writes it into each of them.
pub(super) fn write_into(mc: &MultiCasskop, facts: &mut [SiteFacts]) -> Result<(), SeedError> {
    let clusters: Vec<SiteCluster<'_>> = facts
        .iter()
        .map(|f| SiteCluster {
            site: &f.name,
            desired: &f.desired,
            override_: mc.spec.override_.get(&f.name),
        })
        .collect();
    let list = seeds::federation_seeds(&mc.spec.base, &clusters)?;
    for f in facts {
        seeds::set_seed_list(&mut f.desired, &list);
    }
    Ok(())
}

/// With `spec.autoSeedList`, each site's entry shows the seed list its CassandraCluster holds:
/// the one this reconcile wrote there (`wrote`), else the one observed, else (site not
/// reachable) the one last shown. Without it, none.
pub(super) fn show_in_status(
    mc: &MultiCasskop,
    status: &mut MultiCasskopStatus,
    obs: &Observation,
    wrote: Option<&str>,
) {
    let auto = mc.spec.auto_seed_list == Some(true);
    for entry in &mut status.sites {
        if !auto {
            entry.seed_list.clear();
            continue;
        }
        let Some(i) = obs.facts.iter().position(|f| f.name == entry.name) else {
            continue;
        };
        let fact = &obs.facts[i];
        if wrote == Some(entry.name.as_str()) {
            entry.seed_list = seeds::seed_list_of(&fact.desired.object);
        } else if let Some(live) = &fact.live {
            // `data` holds everything but the object's type and metadata.
            entry.seed_list = seeds::seed_list_of(&live.data);
        } else if obs.input.sites[i].access == SiteAccess::Ok {
            entry.seed_list.clear();
        }
    }
}
