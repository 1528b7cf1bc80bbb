//! Which sites take part in a reconcile, and what the finalizer needs first. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::merge::{InvalidSpec, bad_field};

/// What the MultiCasskop finalizer needs before anything else is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizerStep {
    /// `deleteCassandraCluster: true` and no finalizer yet: add it.
    Add,
    /// The finalizer is there but `deleteCassandraCluster` is not true: remove it.
    Remove,
    /// Being deleted without our finalizer: not ours to clean up, the CassandraClusters stay.
    LeaveAlone,
}

/// The finalizer follows `deleteCassandraCluster`; without it, deletion leaves the clusters.
/// `None`: nothing to do about the finalizer, go on with the rollout or the deletion.
pub fn finalizer_step(
    deleting: bool,
    delete_clusters: bool,
    has_finalizer: bool,
) -> Option<FinalizerStep> {
    if !deleting && delete_clusters && !has_finalizer {
        Some(FinalizerStep::Add)
    } else if has_finalizer && !delete_clusters {
        Some(FinalizerStep::Remove)
    } else if deleting && !has_finalizer {
        Some(FinalizerStep::LeaveAlone)
    } else {
        None
    }
}

/// The sites taking part, and the overrides they are built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakingPart {
    /// In rollout order.
    pub sites: Vec<String>,
    /// `spec.override`, less the sites skipped while deleting.
    pub overrides: BTreeMap<String, Value>,
    /// Sites skipped while deleting because they are no longer configured: their
    /// CassandraClusters are left in place.
    pub left_in_place: Vec<String>,
}

/// How far the list of configured sites can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roster {
    /// Flags, and a ClientConfig list that succeeded: a site missing from it is not configured.
    Known,
    /// The ClientConfig list has not succeeded (not yet since the start, or failing now): a
    /// site no flag names may still be defined by a ClientConfig.
    ClientConfigsUnknown,
}

/// The sites taking part in this reconcile (see [`site_order`] for the order and what is
/// invalid).
///
/// `registered`: configured clusters in default order; `previous`: the sites the status lists.
/// A site the status lists that is no longer configured (its ClientConfig or Secret deleted, a
/// flag dropped) but still named in `override` keeps taking part: it is reported as no longer
/// configured and holds the rollout there, instead of turning the whole resource Invalid; its
/// CassandraCluster is left as it is and re-configuring the site resumes. While deleting, such a
/// site is skipped instead: it cannot be cleaned up by us and must not hold the deletion of the
/// others hostage. But only once a ClientConfig list has shown it gone: with the `roster`
/// unknown, every site `override` names keeps taking part in a deletion, so the deletion waits
/// on it (and keeps the finalizer) rather than guess that it is gone.
pub fn sites_taking_part(
    registered: &[String],
    roster: Roster,
    previous: &[&str],
    overrides: &BTreeMap<String, Value>,
    explicit_order: Option<&[String]>,
    deleting: bool,
) -> Result<TakingPart, InvalidSpec> {
    let mut configured = registered.to_vec();
    let mut overrides = overrides.clone();
    let mut left_in_place = Vec::new();
    if deleting && roster == Roster::ClientConfigsUnknown {
        let unlisted = overrides
            .keys()
            .filter(|s| !registered.contains(s))
            .cloned();
        configured.extend(unlisted);
    } else if deleting {
        overrides.retain(|site, _| {
            let known = registered.contains(site);
            if !known {
                left_in_place.push(site.clone());
            }
            known
        });
    } else {
        let gone = previous
            .iter()
            .filter(|s| !registered.iter().any(|r| r == *s) && overrides.contains_key(**s))
            .map(|s| (*s).to_string());
        configured.extend(gone);
    }
    let explicit: Option<Vec<String>> = explicit_order.map(|order| {
        order
            .iter()
            .filter(|s| !deleting || configured.contains(s))
            .cloned()
            .collect()
    });
    let sites = site_order(&configured, explicit.as_deref(), &overrides)?;
    Ok(TakingPart {
        sites,
        overrides,
        left_in_place,
    })
}

/// The sites taking part, in rollout order (`spec.siteOrder`).
///
/// `configured`: configured cluster names in default order (`--local`, `--remote`s in flag
/// order, then ClientConfig sites by name). Sites taking part are the configured ones that
/// `spec.override` names. With `site_order`, they come in that order; sites taking part that
/// `site_order` leaves out follow in default order (so adding a site to `override` without
/// touching `siteOrder` puts it last, never nowhere). A configured site listed in `siteOrder`
/// but absent from `override` does not take part.
///
/// Invalid: an `override` key that is not a configured cluster, a `siteOrder` name that is not
/// a configured cluster, a name listed twice in `siteOrder`.
pub fn site_order(
    configured: &[String],
    site_order: Option<&[String]>,
    overrides: &BTreeMap<String, Value>,
) -> Result<Vec<String>, InvalidSpec> {
    let configured_list = || {
        if configured.is_empty() {
            "none".to_string()
        } else {
            configured.join(", ")
        }
    };
    let unknown: Vec<&str> = overrides
        .keys()
        .filter(|k| !configured.contains(k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(bad_field(
            "spec.override",
            format!(
                "names {} {} that {} not configured cluster{} (configured: {})",
                if unknown.len() == 1 { "site" } else { "sites" },
                unknown.join(", "),
                if unknown.len() == 1 { "is" } else { "are" },
                if unknown.len() == 1 { "" } else { "s" },
                configured_list()
            ),
        ));
    }
    let taking_part = |s: &String| overrides.contains_key(s);
    let mut order: Vec<String> = Vec::new();
    if let Some(explicit) = site_order {
        for (i, s) in explicit.iter().enumerate() {
            if !configured.contains(s) {
                return Err(bad_field(
                    format!("spec.siteOrder[{i}]"),
                    format!(
                        "names site {s}, which is not a configured cluster (configured: {})",
                        configured_list()
                    ),
                ));
            }
            if explicit[..i].contains(s) {
                return Err(bad_field("spec.siteOrder", format!("lists site {s} twice")));
            }
            if taking_part(s) {
                order.push(s.clone());
            }
        }
    }
    for s in configured {
        if taking_part(s) && !order.contains(s) {
            order.push(s.clone());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn overrides(v: &[&str]) -> BTreeMap<String, Value> {
        v.iter().map(|s| ((*s).to_string(), json!({}))).collect()
    }

    #[test]
    fn the_finalizer_follows_delete_cassandra_cluster() {
        assert_eq!(finalizer_step(false, true, false), Some(FinalizerStep::Add));
        assert_eq!(
            finalizer_step(false, false, true),
            Some(FinalizerStep::Remove)
        );
        assert_eq!(
            finalizer_step(true, false, true),
            Some(FinalizerStep::Remove)
        );
        assert_eq!(
            finalizer_step(true, false, false),
            Some(FinalizerStep::LeaveAlone)
        );
        assert_eq!(finalizer_step(false, true, true), None);
        assert_eq!(finalizer_step(true, true, true), None);
        assert_eq!(finalizer_step(false, false, false), None);
    }

    #[test]
    fn a_site_no_longer_configured_keeps_its_place_until_deletion_skips_it() {
        let registered = names(&["a", "c"]);
        let o = overrides(&["a", "b", "c"]);
        let rolling = sites_taking_part(
            &registered,
            Roster::Known,
            &["a", "b", "c"],
            &o,
            None,
            false,
        )
        .unwrap();
        assert_eq!(rolling.sites, names(&["a", "c", "b"]));
        assert!(rolling.left_in_place.is_empty());
        let deleting =
            sites_taking_part(&registered, Roster::Known, &["a", "b", "c"], &o, None, true)
                .unwrap();
        assert_eq!(deleting.sites, names(&["a", "c"]));
        assert_eq!(deleting.left_in_place, names(&["b"]));
        assert!(!deleting.overrides.contains_key("b"));
    }

    #[test]
    fn a_deletion_keeps_every_site_while_the_client_config_list_is_unknown() {
        let registered = names(&["a", "c"]);
        let o = overrides(&["a", "b", "c"]);
        let order = names(&["c", "b", "a"]);
        let deleting = sites_taking_part(
            &registered,
            Roster::ClientConfigsUnknown,
            &["a", "b", "c"],
            &o,
            Some(&order),
            true,
        )
        .unwrap();
        assert_eq!(deleting.sites, names(&["c", "b", "a"]));
        assert!(deleting.left_in_place.is_empty());
        assert!(deleting.overrides.contains_key("b"));
    }

    #[test]
    fn an_override_never_rolled_out_to_an_unconfigured_site_is_invalid() {
        let err = sites_taking_part(
            &names(&["a"]),
            Roster::Known,
            &[],
            &overrides(&["a", "b"]),
            None,
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("spec.override names site b"),
            "{err}"
        );
    }
}
