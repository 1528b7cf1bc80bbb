//! `spec.autoSeedList` in the report step: each site's seed list shown in `status.sites[]` (the
//! list itself is computed in `plan::seeds` and written into the desired objects by observe).

use crate::api::{MultiCasskop, MultiCasskopStatus};
use crate::rollout::observe::Observation;
use crate::rollout::plan::SiteAccess;
use crate::rollout::plan::seeds;

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
