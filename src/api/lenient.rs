//! Lenient decoding: an object that cannot be decoded becomes a [`Poison`] naming it and the fault,
//! so the list or watch event carrying it still decodes and every other object goes on.
//!
//! serde_json refuses documents nesting deeper than 128 levels, counted from the root of what one
//! call parses; kube decodes a whole list in one call, so a single deep item used to fail the list
//! and with it every object of the kind. [`Lenient`] first captures each item as raw JSON
//! (serde_json's raw capture skips nested values with an explicit stack, without the recursion
//! limit), then decodes it on its own: a failure stays with that item.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// serde_json's nesting limit (levels counted from the decoded document's root).
pub const DECODER_DEPTH_LIMIT: usize = 128;
/// Path segments kept when naming a field that nests too deep.
const SHOWN_SEGMENTS: usize = 4;

/// Why an object could not be decoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A value nests deeper than the decoder's limit; `field` is where the limit was hit.
    #[error(
        "{field} nests deeper than {DECODER_DEPTH_LIMIT} levels, the most this controller decodes"
    )]
    TooDeep { field: String },
    /// A field holds a value our types do not take (`field` is `.` for the document itself).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// An object that could not be decoded: what little identifies it, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Poison {
    /// name, namespace, uid, resourceVersion, generation and labels, read on their own.
    pub meta: ObjectMeta,
    /// What was wrong, and where.
    pub error: DecodeError,
}

impl Poison {
    /// `namespace/name` of the object.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.meta.namespace.as_deref().unwrap_or_default(),
            self.meta.name.as_deref().unwrap_or_default()
        )
    }
}

/// An object as listed or watched: decoded, or set aside as poison.
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    /// Decoded as `K`.
    Decoded(K),
    /// Could not be decoded as `K`.
    Poison(Box<Poison>),
}

impl<K> Lenient<K> {
    /// The decoded object, if it could be decoded.
    pub fn decoded(&self) -> Option<&K> {
        match self {
            Lenient::Decoded(k) => Some(k),
            Lenient::Poison(_) => None,
        }
    }
}

impl<K: DeserializeOwned> Lenient<K> {
    /// Decodes one object from its own JSON text: the depth limit counts from this object's root.
    /// `metadata.managedFields` nests as deep as the object and is never read: when it alone is
    /// too deep, the object is decoded without it; the error otherwise names the object's field.
    pub fn from_json(text: &str) -> Self {
        let error = match decode::<K>(text) {
            Ok(k) => return Lenient::Decoded(k),
            Err(e) => e,
        };
        let error = match &error {
            DecodeError::TooDeep { field } if field.starts_with(MANAGED_FIELDS) => {
                match without_managed_fields(text).map(|t| decode::<K>(&t)) {
                    Some(Ok(k)) => return Lenient::Decoded(k),
                    Some(Err(e)) => e,
                    None => error,
                }
            }
            _ => error,
        };
        Lenient::Poison(Box::new(Poison {
            meta: meta_only(text),
            error,
        }))
    }
}

const MANAGED_FIELDS: &str = "metadata.managedFields";

fn decode<K: DeserializeOwned>(text: &str) -> Result<K, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, K>(&mut de).map_err(|e| describe(&e))
}

/// `text` without `metadata.managedFields`, every other value copied verbatim (raw captures,
/// so without the recursion limit).
fn without_managed_fields(text: &str) -> Option<String> {
    type RawMap = BTreeMap<String, Box<RawValue>>;
    let mut doc: RawMap = serde_json::from_str(text).ok()?;
    let mut meta: RawMap = serde_json::from_str(doc.get("metadata")?.get()).ok()?;
    meta.remove("managedFields")?;
    doc.insert(
        "metadata".to_string(),
        serde_json::value::to_raw_value(&meta).ok()?,
    );
    serde_json::to_string(&doc).ok()
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self::from_json(raw.get()))
    }
}

/// The type-level half of `Resource` for a wrapper of `K`: the wrapped kind's, unchanged (the
/// API serves `K`; the wrapper only changes how an object is held).
macro_rules! resource_of_wrapped {
    () => {
        type DynamicType = K::DynamicType;
        type Scope = K::Scope;

        fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::kind(dt)
        }
        fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::group(dt)
        }
        fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::version(dt)
        }
        fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::api_version(dt)
        }
        fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::plural(dt)
        }
        fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
            K::url_path(dt, namespace)
        }
    };
}

impl<K: Resource> Resource for Lenient<K> {
    resource_of_wrapped!();

    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta(),
            Lenient::Poison(p) => &p.meta,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta_mut(),
            Lenient::Poison(p) => &mut p.meta,
        }
    }
}

/// An object kept as its JSON text (without `metadata.managedFields`), decoded when read: a cache
/// of many objects holds their text, a fraction of the decoded objects (each `serde_json::Value`
/// map keeps its order, so it is an index plus a table). Beside the text only the metadata that
/// keys and finds it (name, namespace, uid, resourceVersion, generation, labels). Decoding is
/// [`Lenient`]'s: an object that cannot be decoded is told apart when read.
#[derive(Clone, Debug)]
pub struct Packed<K> {
    metadata: ObjectMeta,
    text: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Packed<K> {
    /// Keeps `text`, one object's JSON.
    pub fn from_json(text: &str) -> Self {
        let text = without_managed_fields(text).map_or_else(|| text.into(), String::into_boxed_str);
        Self {
            metadata: meta_only(&text),
            text,
            kind: PhantomData,
        }
    }
}

impl<K: DeserializeOwned> Packed<K> {
    /// The object, decoded (or set aside as poison) as [`Lenient::from_json`] does.
    pub fn decode(&self) -> Lenient<K> {
        Lenient::from_json(&self.text)
    }
}

impl<'de, K> Deserialize<'de> for Packed<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self::from_json(raw.get()))
    }
}

impl<K: Resource> Resource for Packed<K> {
    resource_of_wrapped!();

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A watch event with poison objects set aside for caches of decoded objects: `poisoned` hears of
/// each one, and an update that turned an object into poison removes it (`placeholder` builds the
/// object to remove from its metadata), so no cache keeps a version that is no longer true.
pub fn sift<K>(
    event: watcher::Event<Lenient<K>>,
    placeholder: impl Fn(ObjectMeta) -> K,
    mut poisoned: impl FnMut(&Poison),
) -> Option<watcher::Event<K>> {
    use watcher::Event;
    let mut keep = |o: Lenient<K>| match o {
        Lenient::Decoded(k) => Ok(k),
        Lenient::Poison(p) => {
            poisoned(&p);
            Err(p)
        }
    };
    match event {
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
        Event::InitApply(o) => keep(o).ok().map(Event::InitApply),
        Event::Apply(o) => Some(match keep(o) {
            Ok(k) => Event::Apply(k),
            Err(p) => Event::Delete(placeholder(p.meta)),
        }),
        Event::Delete(Lenient::Decoded(k)) => Some(Event::Delete(k)),
        Event::Delete(Lenient::Poison(p)) => Some(Event::Delete(placeholder(p.meta))),
    }
}

/// [`sift`] over a whole watch stream: a stream of decoded objects whatever the server sends.
pub fn sifted<K, S>(
    stream: S,
    placeholder: impl Fn(ObjectMeta) -> K + Clone + Send,
    mut poisoned: impl FnMut(&Poison) + Send,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Send,
    S: Stream<Item = Result<watcher::Event<Lenient<K>>, watcher::Error>> + Send,
{
    stream.filter_map(move |ev| {
        let out = match ev {
            Ok(ev) => sift(ev, placeholder.clone(), &mut poisoned).map(Ok),
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    })
}

/// The identifying metadata of a document that did not decode. Everything else, `managedFields`
/// included (it nests as deep as the object), is skipped without the recursion limit.
fn meta_only(text: &str) -> ObjectMeta {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        generation: Option<i64>,
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Doc {
        metadata: Meta,
    }
    let m = serde_json::from_str::<Doc>(text)
        .unwrap_or_default()
        .metadata;
    ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        generation: m.generation,
        labels: m.labels,
        ..ObjectMeta::default()
    }
}

fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    let segments: Vec<String> = e.path().iter().map(ToString::to_string).collect();
    let message = e.inner().to_string();
    // serde_json appends the position, meaningless to someone reading the object back.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    if message.starts_with("recursion limit exceeded") {
        let shown = segments.len().min(SHOWN_SEGMENTS);
        let mut field = join(&segments[..shown]);
        if segments.len() > shown {
            field.push_str(".…");
        }
        return DecodeError::TooDeep { field };
    }
    DecodeError::Invalid {
        field: join(&segments),
        message,
    }
}

/// `spec.siteOrder[0]` from the segments `spec`, `siteOrder`, `[0]`.
fn join(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !out.is_empty() && !s.starts_with('[') {
            out.push('.');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MultiCasskop;
    use kube::core::ObjectList;

    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    fn mc(name: &str, spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"db.orange.com/v2","kind":"MultiCasskop",
               "metadata":{{"name":"{name}","namespace":"ns","uid":"u-{name}","generation":3}},
               "spec":{spec}}}"#
        )
    }

    #[test]
    fn a_deep_item_stays_alone_in_its_list() {
        let deep = mc("deep", &format!(r#"{{"base":{}}}"#, nested(200)));
        let healthy = mc("ok", r#"{"base":{"spec":{"nodesPerRacks":3}}}"#);
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{"resourceVersion":"7"}},"items":[{healthy},{deep}]}}"#
        );
        assert!(serde_json::from_str::<ObjectList<MultiCasskop>>(&list).is_err());
        let items = serde_json::from_str::<ObjectList<Lenient<MultiCasskop>>>(&list)
            .unwrap()
            .items;
        assert_eq!(
            items[0].decoded().unwrap().metadata.name.as_deref(),
            Some("ok")
        );
        let Lenient::Poison(p) = &items[1] else {
            panic!("the deep item decoded");
        };
        assert_eq!(p.key(), "ns/deep");
        assert_eq!(p.meta.uid.as_deref(), Some("u-deep"));
        assert_eq!(p.meta.generation, Some(3));
        assert_eq!(
            p.error.to_string(),
            "spec.base.a.a.… nests deeper than 128 levels, the most this controller decodes"
        );
    }

    #[test]
    fn a_type_our_struct_rejects_names_the_field() {
        let text = mc(
            "typed",
            r#"{"siteOrder":"dc1","deleteCassandraCluster":true}"#,
        );
        let Lenient::Poison(p) = Lenient::<MultiCasskop>::from_json(&text) else {
            panic!("a string decoded as a list");
        };
        assert_eq!(
            p.error.to_string(),
            r#"spec.siteOrder: invalid type: string "dc1", expected a sequence"#
        );
    }

    fn managed_fields(depth: usize) -> String {
        format!(
            r#""managedFields":[{{"manager":"kubectl","fieldsV1":{}}}]"#,
            nested(depth)
        )
    }

    #[test]
    fn deep_managed_fields_alone_still_decode() {
        let text = format!(
            r#"{{"kind":"Secret","apiVersion":"v1","metadata":{{{},"name":"s","namespace":"n"}},"data":{{"k":"dg=="}}}}"#,
            managed_fields(300)
        );
        let secret = Lenient::<k8s_openapi::api::core::v1::Secret>::from_json(&text);
        let secret = secret.decoded().expect("decoded without managedFields");
        assert_eq!(secret.metadata.name.as_deref(), Some("s"));
        assert_eq!(secret.data.as_ref().unwrap()["k"].0, b"v");
    }

    #[test]
    fn deep_managed_fields_do_not_hide_the_deep_field() {
        let text = format!(
            r#"{{"metadata":{{{},"name":"m","namespace":"ns"}},"spec":{{"base":{}}}}}"#,
            managed_fields(300),
            nested(200)
        );
        let Lenient::Poison(p) = Lenient::<MultiCasskop>::from_json(&text) else {
            panic!("decoded");
        };
        assert_eq!(p.key(), "ns/m");
        assert_eq!(
            p.error,
            DecodeError::TooDeep {
                field: "spec.base.a.a.…".into()
            }
        );
    }

    #[test]
    fn a_packed_object_decodes_as_it_was_listed_without_managed_fields() {
        let text = format!(
            r#"{{"apiVersion":"db.orange.com/v2","kind":"MultiCasskop",
               "metadata":{{"name":"m","namespace":"ns","uid":"u-m","generation":3,
                            "resourceVersion":"9","finalizers":["f"],{}}},
               "spec":{{"base":{{"spec":{{"nodesPerRacks":3}}}},"siteOrder":["dc2","dc1"]}},
               "status":{{"phase":"Running"}}}}"#,
            managed_fields(3)
        );
        let packed: Packed<MultiCasskop> = serde_json::from_str(&text).unwrap();
        let mut listed: MultiCasskop = serde_json::from_str(&text).unwrap();
        assert!(listed.metadata.managed_fields.take().is_some());
        let decoded = packed.decode();
        assert_eq!(
            serde_json::to_value(decoded.decoded().unwrap()).unwrap(),
            serde_json::to_value(&listed).unwrap()
        );
        let meta = packed.meta();
        assert_eq!(
            (meta.name.as_deref(), meta.namespace.as_deref()),
            (Some("m"), Some("ns"))
        );
        assert_eq!(meta.resource_version.as_deref(), Some("9"));
        assert_eq!(meta.uid.as_deref(), Some("u-m"));
        assert_eq!(meta.generation, Some(3));
        assert!(!packed.text.contains("managedFields"));
    }

    #[test]
    fn a_packed_object_that_cannot_be_decoded_is_poison_when_read() {
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{"resourceVersion":"7"}},"items":[{},{}]}}"#,
            mc("ok", r#"{"base":{}}"#),
            mc("typed", r#"{"siteOrder":"dc1"}"#)
        );
        let items = serde_json::from_str::<ObjectList<Packed<MultiCasskop>>>(&list)
            .unwrap()
            .items;
        assert!(items[0].decode().decoded().is_some());
        assert_eq!(items[1].meta().name.as_deref(), Some("typed"));
        let Lenient::Poison(p) = items[1].decode() else {
            panic!("a string decoded as a list");
        };
        assert_eq!(p.key(), "ns/typed");
        assert_eq!(p.meta.uid.as_deref(), Some("u-typed"));
        assert_eq!(
            p.error.to_string(),
            r#"spec.siteOrder: invalid type: string "dc1", expected a sequence"#
        );
    }

    #[test]
    fn poison_update_removes_the_cached_version() {
        let text = mc("m", r#"{"siteOrder":7}"#);
        let ev = watcher::Event::Apply(Lenient::<MultiCasskop>::from_json(&text));
        let mut heard = Vec::new();
        let out = sift(
            ev,
            |meta| MultiCasskop {
                metadata: meta,
                spec: Default::default(),
                status: None,
            },
            |p| heard.push(p.key()),
        );
        assert!(
            matches!(out, Some(watcher::Event::Delete(m)) if m.metadata.name.as_deref() == Some("m"))
        );
        assert_eq!(heard, ["ns/m"]);
    }
}
