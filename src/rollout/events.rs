//! Kubernetes Events (events.k8s.io/v1) about MultiCasskops.
//!
//! kube-runtime's `Recorder` folds Events that share type, reason and action into one series
//! whatever their note says: "Created CassandraCluster ... in site site2" became a second count of
//! the site1 Event, its text lost. It also keeps every Event it wrote, whole, for six minutes
//! (18 MB of the controller's memory in a 1,000-resource rollout). Here an Event is repeated as
//! a series only when its note is the same too, and only the Event's name and count are kept.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// An Event repeated within this window becomes a series (Kubernetes' own recorder: 6 min).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often the memory of recent Events is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event to publish about an object.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub type_: EventType,
    /// CamelCase, machine-readable: `Created`, `SiteReady`, `ApplyFailed`.
    pub reason: &'a str,
    /// What the controller did or failed to do: `Apply`, `Delete`, `Reconcile`.
    pub action: &'a str,
    /// Human-readable; cut at 1 kB as the API server requires.
    pub note: &'a str,
}

struct Recent {
    name: String,
    count: i32,
    seen: Instant,
}

/// Writes Events; remembers recent ones (name and count only) to count repeats.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<(HashMap<u64, Recent>, Instant)>,
}

impl Publisher {
    /// `controller`: reportingController (`multi-casskop`); `instance`: reportingInstance (pod).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Publisher {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            recent: Mutex::new((HashMap::new(), Instant::now())),
        }
    }

    /// Publish `ev` about `regarding` (in its namespace). An Event identical to one published
    /// within the last six minutes increments that Event's series instead of adding another.
    pub async fn publish(
        &self,
        ev: &NewEvent<'_>,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = event_key(ev, regarding);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = jiff::Timestamp::now();
        let repeat = self.repeat_of(key);
        if let Some((name, count)) = repeat {
            let series = json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted meanwhile (Events expire): write a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(ev, regarding, now);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        let mut recent = self.recent.lock().expect("events lock");
        recent.0.insert(
            key,
            Recent {
                name,
                count: 1,
                seen: Instant::now(),
            },
        );
        Ok(())
    }

    /// `Some((name, new count))` when an identical Event was published within the window.
    fn repeat_of(&self, key: u64) -> Option<(String, i32)> {
        let mut guard = self.recent.lock().expect("events lock");
        let (recent, swept) = &mut *guard;
        let now = Instant::now();
        if now.duration_since(*swept) > SWEEP_EVERY {
            recent.retain(|_, r| now.duration_since(r.seen) < SERIES_WINDOW);
            *swept = now;
        }
        let r = recent.get_mut(&key)?;
        if now.duration_since(r.seen) >= SERIES_WINDOW {
            recent.remove(&key);
            return None;
        }
        r.count += 1;
        r.seen = now;
        Some((r.name.clone(), r.count))
    }

    fn event(&self, ev: &NewEvent<'_>, regarding: &ObjectReference, now: jiff::Timestamp) -> Event {
        let base = regarding.name.as_deref().unwrap_or("object");
        Event {
            metadata: ObjectMeta {
                // Unique like the API server's generateName, readable like kubectl's Events.
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(ev.type_.as_str().to_string()),
            reason: Some(ev.reason.to_string()),
            action: Some(ev.action.to_string()),
            note: Some(truncate(ev.note, 1000)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

fn event_key(ev: &NewEvent<'_>, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &regarding.uid,
        &regarding.namespace,
        &regarding.name,
        ev.type_,
        ev.reason,
        ev.action,
        ev.note,
    )
        .hash(&mut h);
    h.finish()
}

/// At most `max` bytes, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn ev<'a>(reason: &'a str, note: &'a str) -> NewEvent<'a> {
        NewEvent {
            type_: EventType::Normal,
            reason,
            action: "Apply",
            note,
        }
    }

    #[test]
    fn events_differing_only_in_their_note_are_distinct() {
        let a = event_key(&ev("Created", "in site site1"), &reference("mc"));
        let b = event_key(&ev("Created", "in site site2"), &reference("mc"));
        assert_ne!(a, b);
        assert_eq!(
            a,
            event_key(&ev("Created", "in site site1"), &reference("mc"))
        );
        assert_ne!(
            a,
            event_key(&ev("Created", "in site site1"), &reference("other"))
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate(&"x".repeat(1200), 1000).len(), 1000);
    }
}
