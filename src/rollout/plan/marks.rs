//! Applied marks: what a write of ours did to a site's CassandraCluster, and how long CassKop's
//! status must be distrusted after it. Pure: recorded marks and live objects in, marks out.

use kube::ResourceExt;
use kube::api::DynamicObject;

use super::types::AppliedMark;
use crate::api::{FROM_GENERATION_ANNOTATION, SPEC_HASH_ANNOTATION};

impl AppliedMark {
    /// The mark to record after writing the desired object of hash `hash` to a site.
    ///
    /// - `previous`: the mark recorded before this write, if any;
    /// - `generation_before`: the live object's `metadata.generation` before the write (`None`:
    ///   this write created it);
    /// - `generation_after`: the generation the write returned;
    /// - `spec_changed`: the write changed what CassKop acts on ([`casskop_will_react`]: `spec` or
    ///   `status.seedlist`), i.e. CassKop will react to it with a status write.
    ///
    /// A site counts as Ready only once its generation is above the mark (CassKop wrote after
    /// us). A write CassKop will react to sets the mark to the new generation. A write it will
    /// not react to (labels, annotations, or nothing) must not make the
    /// planner wait for a status that never comes: the mark is set below the current generation,
    /// unless an earlier write is still waiting for CassKop, which stays awaited.
    pub fn after_write(
        hash: impl Into<String>,
        previous: Option<&AppliedMark>,
        generation_before: Option<i64>,
        generation_after: i64,
        spec_changed: bool,
    ) -> Self {
        let generation = match (generation_before, previous) {
            (None, _) => generation_after,
            _ if spec_changed => generation_after,
            // CassKop had not picked up our previous write yet: still wait for it. If the
            // generation moved meanwhile we cannot tell CassKop's write from ours: wait for
            // the next one (CassKop writes again when it finishes).
            (Some(before), Some(p))
                if before <= p.generation && p.generation <= generation_after =>
            {
                if generation_after == before {
                    p.generation
                } else {
                    generation_after
                }
            }
            _ => generation_after - 1,
        };
        AppliedMark {
            hash: hash.into(),
            generation,
            dropped: Vec::new(),
        }
    }
}

/// True when a write from `before` (`None`: created) to `after` changed something CassKop acts
/// on, so a status write from CassKop must follow before the site counts as Ready: `spec`, or
/// `status.seedlist` (CassKop compares it with its StatefulSets and runs UpdateSeedList).
pub fn casskop_will_react(before: Option<&DynamicObject>, after: &DynamicObject) -> bool {
    let seedlist = |o: &DynamicObject| {
        o.data
            .get("status")
            .and_then(|s| s.get("seedlist"))
            .cloned()
    };
    before.is_none_or(|b| {
        b.data.get("spec") != after.data.get("spec") || seedlist(b) != seedlist(after)
    })
}

impl AppliedMark {
    /// [`AppliedMark::after_write`] from the objects themselves: `before` is the live object our
    /// write started from (`None`: created), `after` the object the write returned.
    pub fn after_apply(
        hash: impl Into<String>,
        previous: Option<&AppliedMark>,
        before: Option<&DynamicObject>,
        after: &DynamicObject,
    ) -> Self {
        let generation_after = after.metadata.generation.unwrap_or(0);
        let generation_before = before.map(|b| b.metadata.generation.unwrap_or(0));
        let spec_changed = casskop_will_react(before, after);
        Self::after_write(
            hash,
            previous,
            generation_before,
            generation_after,
            spec_changed,
        )
    }
}

/// The applied mark of a write of ours that landed but whose record in the status was lost
/// (the controller stopped between the write and the status update, or the status write was
/// refused), with the generation that write was computed from.
///
/// The object says what our last write did: [`FROM_GENERATION_ANNOTATION`] is the generation it
/// was computed from (exact: the write carried that version as a precondition), `0` for a
/// create. The status records the same number with the mark (`recorded_from`), so a differing
/// number (or a differing hash) means a later write went unrecorded. A generation above it means
/// that write changed what CassKop acts on (or someone wrote after it): CassKop's status counts
/// once the generation is past `from + 1`. Otherwise the write changed only metadata and nobody
/// wrote since: nothing to wait for (unless an earlier write was still awaited).
///
/// `None` when the object does not carry `desired_hash` with a from-generation, or the status
/// records that very write.
pub fn recover_mark(
    live: &DynamicObject,
    desired_hash: &str,
    previous: Option<&AppliedMark>,
    recorded_from: Option<i64>,
) -> Option<(AppliedMark, i64)> {
    let annotations = live.annotations();
    if annotations.get(SPEC_HASH_ANNOTATION).map(String::as_str) != Some(desired_hash) {
        return None;
    }
    let from: i64 = annotations.get(FROM_GENERATION_ANNOTATION)?.parse().ok()?;
    if previous.is_some_and(|p| p.hash == desired_hash) && recorded_from.is_none_or(|r| r == from) {
        // Recorded (or recorded by a version that did not note the from-generation).
        return None;
    }
    let now = live.metadata.generation.unwrap_or(0);
    let mark = if from == 0 {
        AppliedMark::after_write(desired_hash, previous, None, 1, true)
    } else if now > from {
        AppliedMark::after_write(desired_hash, previous, Some(from), from + 1, true)
    } else {
        AppliedMark::after_write(desired_hash, previous, Some(from), from, false)
    };
    Some((mark, from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cassandra::cassandra_cluster_resource;

    fn live_with(hash: &str, from: Option<&str>, generation: i64) -> DynamicObject {
        let mut obj = DynamicObject::new("cc", &cassandra_cluster_resource()).within("ns");
        obj.annotations_mut()
            .insert(SPEC_HASH_ANNOTATION.into(), hash.into());
        if let Some(from) = from {
            obj.annotations_mut()
                .insert(FROM_GENERATION_ANNOTATION.into(), from.into());
        }
        obj.metadata.generation = Some(generation);
        obj
    }

    fn mark(hash: &str, generation: i64) -> AppliedMark {
        AppliedMark {
            hash: hash.into(),
            generation,
            dropped: Vec::new(),
        }
    }

    #[test]
    fn lost_mark_of_a_spec_change_waits_for_casskop_until_it_wrote_after_it() {
        let old = mark("h1", 3);
        // Our write went from 4 to 5; CassKop has not written since: wait past 5.
        let just_written = live_with("h2", Some("4"), 5);
        assert_eq!(
            recover_mark(&just_written, "h2", Some(&old), Some(1)),
            Some((mark("h2", 5), 4))
        );
        // CassKop wrote twice since (stale Running/Done can no longer fool us): same mark,
        // and the generation is past it.
        let casskop_wrote = live_with("h2", Some("4"), 7);
        assert_eq!(
            recover_mark(&casskop_wrote, "h2", Some(&old), Some(1)),
            Some((mark("h2", 5), 4))
        );
    }

    #[test]
    fn lost_mark_of_a_create_waits_for_casskops_first_status() {
        let created = live_with("h1", Some("0"), 1);
        assert_eq!(
            recover_mark(&created, "h1", None, None),
            Some((mark("h1", 1), 0))
        );
        let running = live_with("h1", Some("0"), 3);
        assert_eq!(
            recover_mark(&running, "h1", None, None),
            Some((mark("h1", 1), 0))
        );
    }

    #[test]
    fn lost_mark_of_a_metadata_only_write_waits_for_nothing_new() {
        // Generation unchanged since the write: it changed labels/annotations only.
        let live = live_with("h2", Some("6"), 6);
        assert_eq!(
            recover_mark(&live, "h2", Some(&mark("h1", 3)), Some(2)),
            Some((mark("h2", 5), 6)),
            "CassKop had picked up h1 (6 > 3): ready at once"
        );
        assert_eq!(
            recover_mark(&live, "h2", Some(&mark("h1", 6)), Some(5)),
            Some((mark("h2", 6), 6)),
            "h1 was still awaited: still wait for it"
        );
    }

    #[test]
    fn no_recovery_without_our_hash_and_generation_or_with_a_mark_for_it() {
        let live = live_with("h1", Some("4"), 5);
        assert_eq!(
            recover_mark(&live, "h2", None, None),
            None,
            "our write of h2 never landed"
        );
        let live = live_with("h2", Some("4"), 5);
        assert_eq!(
            recover_mark(&live, "h2", Some(&mark("h2", 5)), Some(4)),
            None,
            "the mark is there"
        );
        let unknown = live_with("h2", None, 5);
        assert_eq!(
            recover_mark(&unknown, "h2", None, None),
            None,
            "cannot tell"
        );
        let garbled = live_with("h2", Some("five"), 5);
        assert_eq!(
            recover_mark(&garbled, "h2", None, None),
            None,
            "cannot tell"
        );
    }

    #[test]
    fn a_later_write_of_the_same_hash_is_told_from_the_recorded_one() {
        // Recorded: the create (from 0, mark 1). Then someone edited the spec (generation 6)
        // and our re-apply of the same desired object (from 6, generation 7) went unrecorded:
        // CassKop's stale Running/Done at 7 must not count.
        let live = live_with("h1", Some("6"), 7);
        assert_eq!(
            recover_mark(&live, "h1", Some(&mark("h1", 1)), Some(0)),
            Some((mark("h1", 7), 6))
        );
    }
}
