//! Where a site added to a running federation goes in the rollout: it is created last in
//! time, once every existing site is settled (Running/Done after our last write), and before
//! anything changes on them; a changed seed list (or any change made with it) then reaches them
//! after it, one at a time. So the new site goes first in the rollout order once they are all
//! settled, and last while any of them is not. "Ready" cannot be asked of the existing sites
//! here: with `autoSeedList` the new site's seeds make every one of them outdated until it is
//! created, and updating them first would give them seeds of nodes that do not exist yet.
//! Pure but for the reordering of one reconcile's observation.

use crate::rollout::observe::Observation;
use crate::rollout::plan::{self, SiteInput};

/// The rollout order with joining sites moved: indices into `sites`. A site joins when the
/// status never listed it (`recorded`: the names it lists) and nothing of it exists yet; the
/// others exist. With no existing site (a federation's first rollout), the order is unchanged.
pub fn join_order(sites: &[SiteInput], recorded: &[&str]) -> Vec<usize> {
    let joining = |s: &SiteInput| {
        !recorded.contains(&s.name.as_str()) && s.observed.is_none() && s.applied.is_none()
    };
    let (new, existing): (Vec<usize>, Vec<usize>) =
        (0..sites.len()).partition(|&i| joining(&sites[i]));
    if new.is_empty() || existing.is_empty() {
        return (0..sites.len()).collect();
    }
    if existing.iter().all(|&i| plan::settled(&sites[i])) {
        [new, existing].concat()
    } else {
        [existing, new].concat()
    }
}

/// Put the observation's sites in [`join_order`].
pub(super) fn put_joining_sites_in_place(obs: &mut Observation) {
    let recorded: Vec<&str> = obs.prev.sites.iter().map(|s| s.name.as_str()).collect();
    let order = join_order(&obs.input.sites, &recorded);
    if order.iter().enumerate().all(|(i, &j)| i == j) {
        return;
    }
    let pick = |i: &usize| *i;
    let mut facts: Vec<_> = std::mem::take(&mut obs.facts)
        .into_iter()
        .map(Some)
        .collect();
    let mut sites: Vec<_> = std::mem::take(&mut obs.input.sites)
        .into_iter()
        .map(Some)
        .collect();
    let mut details: Vec<_> = std::mem::take(&mut obs.details)
        .into_iter()
        .map(Some)
        .collect();
    for i in order.iter().map(pick) {
        obs.facts.extend(facts[i].take());
        obs.input.sites.extend(sites[i].take());
        obs.details.extend(details[i].take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::fixtures::{applied_site as site, new_site};

    #[test]
    fn a_joining_site_goes_first_once_every_existing_site_is_settled() {
        let sites = [
            site("a", "Running", "Done"),
            new_site("n"),
            site("b", "Running", "Done"),
        ];
        assert_eq!(join_order(&sites, &["a", "b"]), [1, 0, 2]);
    }

    #[test]
    fn a_joining_site_waits_last_while_an_existing_site_is_busy() {
        let sites = [
            site("a", "Running", "Done"),
            new_site("n"),
            site("b", "Pending", "Ongoing"),
        ];
        assert_eq!(join_order(&sites, &["a", "b"]), [0, 2, 1]);
    }

    #[test]
    fn a_first_rollout_and_a_recorded_site_keep_their_order() {
        let sites = [new_site("a"), new_site("b")];
        assert_eq!(join_order(&sites, &[]), [0, 1]);
        let sites = [site("a", "Running", "Done"), new_site("b"), new_site("c")];
        assert_eq!(join_order(&sites, &["a", "b", "c"]), [0, 1, 2]);
    }
}
