//! A pod's volumes on the host (secret, configMap, projected with the service-account token, downwardAPI, emptyDir), written and updated as the kubelet's atomic writer does: files in a timestamped directory, swapped in at once through the `..data` symlink.
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Pod, Secret, ServiceAccount, Volume};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};

/// Where a pod's volumes come from: the kubelet's caches of Secrets and ConfigMaps (filled
/// by watches, as the kubelet's watch-based managers are) and the API for tokens.
#[derive(Clone)]
pub struct Sources {
    pub secrets: Store<Secret>,
    pub configmaps: Store<ConfigMap>,
    pub client: kube::Client,
    pub ca_pem: String,
}

/// A volume that could not be set up: the kubelet's FailedMount message.
#[derive(Debug, Clone, PartialEq)]
pub struct MountFailure {
    pub volume: String,
    pub message: String,
}

impl std::fmt::Display for MountFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MountVolume.SetUp failed for volume \"{}\" : {}",
            self.volume, self.message
        )
    }
}

/// key -> (content, mode)
type Files = BTreeMap<String, (Vec<u8>, u32)>;

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// The volumes of one pod, under `dir/volumes/NAME`.
pub struct Volumes {
    dir: PathBuf,
    tokens: HashMap<String, CachedToken>,
}

impl Volumes {
    pub fn new(dir: PathBuf) -> Volumes {
        Volumes {
            dir,
            tokens: HashMap::new(),
        }
    }

    pub fn host_dir(&self, volume: &str) -> PathBuf {
        self.dir.join("volumes").join(volume)
    }

    /// Brings every volume up to date with its source; the first failure stops the pod's
    /// containers from starting, as on a node.
    pub async fn sync(&mut self, pod: &Pod, src: &Sources) -> Result<(), MountFailure> {
        let spec = pod
            .spec
            .as_ref()
            .map(|s| s.volumes.clone().unwrap_or_default());
        for v in spec.unwrap_or_default() {
            let fail = |message: String| MountFailure {
                volume: v.name.clone(),
                message,
            };
            let dir = self.host_dir(&v.name);
            if v.empty_dir.is_some() {
                // World-writable, as the kubelet makes an emptyDir (any runAsUser can write).
                std::fs::create_dir_all(&dir)
                    .and_then(|()| {
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    })
                    .map_err(|e| fail(e.to_string()))?;
                continue;
            }
            let files = self.files(pod, &v, src).await.map_err(fail)?;
            write_atomic(&dir, &files)
                .map_err(|e| fail(format!("writing {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    async fn files(&mut self, pod: &Pod, v: &Volume, src: &Sources) -> Result<Files, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let mode = s.default_mode.unwrap_or(0o644) as u32;
            return match src.secrets.get(&ObjectRef::new(&name).within(&ns)) {
                Some(sec) => project(secret_data(&sec), s.items.as_deref(), mode, "secret"),
                None if s.optional == Some(true) => Ok(Files::new()),
                None => Err(format!("secret \"{name}\" not found")),
            };
        }
        if let Some(c) = &v.config_map {
            let mode = c.default_mode.unwrap_or(0o644) as u32;
            return match src.configmaps.get(&ObjectRef::new(&c.name).within(&ns)) {
                Some(cm) => project(configmap_data(&cm), c.items.as_deref(), mode, "configmap"),
                None if c.optional == Some(true) => Ok(Files::new()),
                None => Err(format!("configmap \"{}\" not found", c.name)),
            };
        }
        if let Some(d) = &v.downward_api {
            let mode = d.default_mode.unwrap_or(0o644) as u32;
            let mut out = Files::new();
            for item in d.items.iter().flatten() {
                if let Some(f) = &item.field_ref {
                    out.insert(
                        item.path.clone(),
                        (field_value(pod, &f.field_path).into_bytes(), mode),
                    );
                }
            }
            return Ok(out);
        }
        if let Some(p) = &v.projected {
            return self.projected(pod, &v.name, p, src).await;
        }
        Err("volume type not supported by kubesim's kubelet (secret, configMap, projected, downwardAPI, emptyDir are)".into())
    }

    async fn projected(
        &mut self,
        pod: &Pod,
        volume: &str,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
        src: &Sources,
    ) -> Result<Files, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        let mut out = Files::new();
        for s in p.sources.iter().flatten() {
            if let Some(t) = &s.service_account_token {
                let token = self.token(pod, volume, t, src).await?;
                out.insert(t.path.clone(), (token.into_bytes(), mode));
            }
            if let Some(c) = &s.config_map {
                let data = match src.configmaps.get(&ObjectRef::new(&c.name).within(&ns)) {
                    Some(cm) => configmap_data(&cm),
                    // kube-controller-manager publishes kube-root-ca.crt in every namespace;
                    // kubesim has no such controller, so the cluster's CA stands in for it.
                    None if c.name == "kube-root-ca.crt" => {
                        BTreeMap::from([("ca.crt".to_string(), src.ca_pem.clone().into_bytes())])
                    }
                    None if c.optional == Some(true) => BTreeMap::new(),
                    None => return Err(format!("configmap \"{}\" not found", c.name)),
                };
                out.extend(project(data, c.items.as_deref(), mode, "configmap")?);
            }
            if let Some(c) = &s.secret {
                match src.secrets.get(&ObjectRef::new(&c.name).within(&ns)) {
                    Some(sec) => out.extend(project(
                        secret_data(&sec),
                        c.items.as_deref(),
                        mode,
                        "secret",
                    )?),
                    None if c.optional == Some(true) => {}
                    None => return Err(format!("secret \"{}\" not found", c.name)),
                }
            }
            if let Some(d) = &s.downward_api {
                for item in d.items.iter().flatten() {
                    if let Some(f) = &item.field_ref {
                        out.insert(
                            item.path.clone(),
                            (field_value(pod, &f.field_path).into_bytes(), mode),
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    /// The pod's service-account token, requested bound to the pod and renewed after 80% of
    /// its life, as the kubelet's token manager does.
    async fn token(
        &mut self,
        pod: &Pod,
        volume: &str,
        t: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
        src: &Sources,
    ) -> Result<String, String> {
        if let Some(c) = self.tokens.get(volume)
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let expiration = t.expiration_seconds.unwrap_or(3607);
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: t.audience.clone().into_iter().collect(),
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(src.client.clone(), &ns);
        let resp = api
            .create_token_request(&sa, &PostParams::default(), &req)
            .await
            .map_err(|e| format!("failed to fetch token: {}", kube_message(&e)))?;
        let status = resp
            .status
            .ok_or("failed to fetch token: empty TokenRequest status")?;
        let granted = resp.spec.expiration_seconds.unwrap_or(expiration).max(1) as u64;
        self.tokens.insert(
            volume.to_string(),
            CachedToken {
                token: status.token.clone(),
                refresh_at: Instant::now() + Duration::from_secs(granted) * 4 / 5,
            },
        );
        Ok(status.token)
    }
}

/// The API's message for a failed call (its Status message when there is one).
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

fn configmap_data(c: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = c
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in c.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// All keys, or the chosen `items` at their paths.
fn project(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    kind: &str,
) -> Result<Files, String> {
    match items {
        None => Ok(data.into_iter().map(|(k, v)| (k, (v, mode))).collect()),
        Some(items) => items
            .iter()
            .map(|i| {
                let v = data
                    .get(&i.key)
                    .ok_or_else(|| format!("references non-existent {kind} key: {}", i.key))?;
                Ok((
                    i.path.clone(),
                    (v.clone(), i.mode.map_or(mode, |m| m as u32)),
                ))
            })
            .collect(),
    }
}

/// A downward-API field of the pod (the subset the kubelet resolves for env and volumes).
pub fn field_value(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|r| r.strip_suffix("']"))
    {
        return m
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default();
    }
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|r| r.strip_suffix("']"))
    {
        return m
            .annotations
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default();
    }
    match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        _ => None,
    }
    .unwrap_or_default()
}

/// Writes `files` into `dir` as the kubelet's AtomicWriter: a new `..TIMESTAMP` directory,
/// the `..data` symlink swapped to it by rename, one `KEY -> ..data/KEY` symlink per top-level
/// name, the old directory removed. Nothing changes when the content is the same.
pub fn write_atomic(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    if let Ok(cur) = std::fs::read_link(&data_link)
        && same_content(&dir.join(&cur), files)
    {
        return Ok(());
    }
    let old = std::fs::read_link(&data_link).ok();
    let stamp = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let ts_dir = dir.join(&stamp);
    std::fs::create_dir_all(&ts_dir)?;
    for (key, (content, mode)) in files {
        let p = ts_dir.join(key);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, &data_link)?;
    let wanted: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|k| k.split('/').next().map(String::from))
        .collect();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for top in &wanted {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link)?;
        }
    }
    if let Some(old) = old
        && old.as_os_str() != stamp.as_str()
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn same_content(ts_dir: &Path, files: &Files) -> bool {
    let mut count = 0;
    let Ok(walk) = walk_files(ts_dir, ts_dir) else {
        return false;
    };
    for (rel, path) in walk {
        count += 1;
        let Some((content, mode)) = files.get(&rel) else {
            return false;
        };
        let same_mode =
            std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o7777 == *mode);
        if !same_mode || std::fs::read(&path).ok().as_ref() != Some(content) {
            return false;
        }
    }
    count == files.len()
}

fn walk_files(root: &Path, dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        if e.file_type()?.is_dir() {
            out.extend(walk_files(root, &p)?);
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            out.push((rel, p));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_swaps_data_symlink_and_keeps_key_links() {
        let d = tempfile::tempdir().unwrap();
        let mut f = Files::new();
        f.insert("token".into(), (b"one".to_vec(), 0o644));
        f.insert("ca.crt".into(), (b"ca".to_vec(), 0o644));
        write_atomic(d.path(), &f).unwrap();
        let first = std::fs::read_link(d.path().join("..data")).unwrap();
        assert_eq!(
            std::fs::read_link(d.path().join("token")).unwrap(),
            Path::new("..data/token")
        );
        assert_eq!(std::fs::read(d.path().join("token")).unwrap(), b"one");
        write_atomic(d.path(), &f).unwrap();
        assert_eq!(
            std::fs::read_link(d.path().join("..data")).unwrap(),
            first,
            "same content: no swap"
        );
        f.insert("token".into(), (b"two".to_vec(), 0o644));
        f.remove("ca.crt");
        write_atomic(d.path(), &f).unwrap();
        let second = std::fs::read_link(d.path().join("..data")).unwrap();
        assert_ne!(second, first);
        assert!(
            !d.path().join(&first).exists(),
            "the old timestamped directory is removed"
        );
        assert_eq!(std::fs::read(d.path().join("token")).unwrap(), b"two");
        assert!(std::fs::symlink_metadata(d.path().join("ca.crt")).is_err());
    }
}
