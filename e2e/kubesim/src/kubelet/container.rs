//! What a container's process is, from its spec: the program (image -> local binary, `command` as the entrypoint), arguments and environment with `$(VAR)` expansion, in-cluster variables, volume mounts.
//!
//! Image and command: an image maps to one local binary, which is the image's entrypoint.
//! Without `command`, the process is that binary with `args`. With `command`, `command[0]` is
//! the program, as a container's entrypoint override: a bare name equal to the binary's file
//! name (or to the image name without tag) is the mapped binary, as if the image had put it
//! on PATH; any other name is looked up on PATH in the pod's filesystem, which is the host's
//! (so `/bin/sh` works in a pod whose image maps to it).
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::runtime::reflector::ObjectRef;

use super::spawn::{Identity, Mount};
use super::volumes::{Sources, field_value};

/// The image's name without registry-agnostic tag or digest (`repo/name:tag` -> `repo/name`).
fn image_repo(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The binary an image maps to: by exact image, else by its name without the tag.
pub fn image_binary<'a>(images: &'a BTreeMap<String, PathBuf>, image: &str) -> Option<&'a PathBuf> {
    images.get(image).or_else(|| images.get(image_repo(image)))
}

/// Program and arguments of the container (see the module doc for the rules).
pub fn program(
    c: &Container,
    binary: &Path,
    env: &HashMap<String, String>,
) -> (String, Vec<String>) {
    let args: Vec<String> = c.args.iter().flatten().map(|a| expand(a, env)).collect();
    let Some(command) = c.command.as_ref().filter(|c| !c.is_empty()) else {
        return (binary.to_string_lossy().into_owned(), args);
    };
    let cmd: Vec<String> = command.iter().map(|a| expand(a, env)).collect();
    let first = &cmd[0];
    let bin_name = binary.file_name().map(|n| n.to_string_lossy().into_owned());
    let image_name = c
        .image
        .as_deref()
        .map(|i| image_repo(i).rsplit('/').next().unwrap_or("").to_string());
    let program = if !first.contains('/')
        && (bin_name.as_deref() == Some(first.as_str())
            || image_name.as_deref() == Some(first.as_str()))
    {
        binary.to_string_lossy().into_owned()
    } else {
        first.clone()
    };
    let mut all: Vec<String> = cmd[1..].to_vec();
    all.extend(args);
    (program, all)
}

/// `$(VAR)` references expanded as the kubelet does; `$$(VAR)` escapes; unknown ones stay.
pub fn expand(s: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Why the environment could not be made: the waiting reason's message
/// (`CreateContainerConfigError`).
pub type ConfigError = String;

/// The container's environment: image defaults, in-cluster variables, `envFrom`, then `env`
/// in order (later ones see earlier ones through `$(VAR)`).
pub fn environment(
    pod: &Pod,
    c: &Container,
    src: &Sources,
    api: SocketAddr,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut order: Vec<String> = vec![];
    let mut env: HashMap<String, String> = HashMap::new();
    let set = |k: String, v: String, order: &mut Vec<String>, env: &mut HashMap<String, String>| {
        if !env.contains_key(&k) {
            order.push(k.clone());
        }
        env.insert(k, v);
    };
    let defaults = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOSTNAME", pod.metadata.name.clone().unwrap_or_default()),
        // The runtime's HOME for a user the image's /etc/passwd does not name.
        (
            "HOME",
            match identity(pod, c).ok().and_then(|i| i.user) {
                Some((uid, _, _)) if uid != 0 => "/".to_string(),
                _ => "/root".to_string(),
            },
        ),
        // The pod reaches its cluster's API server at the kubeconfig's address (relayed into
        // the pod's network namespace), not at a Service IP.
        ("KUBERNETES_SERVICE_HOST", api.ip().to_string()),
        ("KUBERNETES_SERVICE_PORT", api.port().to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", api.port().to_string()),
        ("KUBERNETES_PORT", format!("tcp://{api}")),
    ];
    for (k, v) in defaults {
        set(k.into(), v, &mut order, &mut env);
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(s) = &from.secret_ref {
            match src.secrets.get(&ObjectRef::new(&s.name).within(&ns)) {
                Some(sec) => {
                    for (k, v) in sec.data.iter().flatten() {
                        set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                            &mut order,
                            &mut env,
                        );
                    }
                }
                None if s.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", s.name)),
            }
        }
        if let Some(cm) = &from.config_map_ref {
            match src.configmaps.get(&ObjectRef::new(&cm.name).within(&ns)) {
                Some(m) => {
                    for (k, v) in m.data.iter().flatten() {
                        set(format!("{prefix}{k}"), v.clone(), &mut order, &mut env);
                    }
                }
                None if cm.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", cm.name)),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => expand(e.value.as_deref().unwrap_or(""), &env),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path)
                } else if let Some(k) = &from.secret_key_ref {
                    match src.secrets.get(&ObjectRef::new(&k.name).within(&ns)) {
                        Some(sec) => match sec.data.as_ref().and_then(|d| d.get(&k.key)) {
                            Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                            None if k.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    k.key, k.name
                                ));
                            }
                        },
                        None if k.optional == Some(true) => continue,
                        None => return Err(format!("secret \"{}\" not found", k.name)),
                    }
                } else if let Some(k) = &from.config_map_key_ref {
                    match src.configmaps.get(&ObjectRef::new(&k.name).within(&ns)) {
                        Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&k.key)) {
                            Some(v) => v.clone(),
                            None if k.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    k.key, k.name
                                ));
                            }
                        },
                        None if k.optional == Some(true) => continue,
                        None => return Err(format!("configmap \"{}\" not found", k.name)),
                    }
                } else {
                    String::new()
                }
            }
        };
        set(e.name.clone(), value, &mut order, &mut env);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = env.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The process's identity; refused as the kubelet refuses `runAsNonRoot` without a non-root
/// user (the images here have no USER of their own, so they run as root).
pub fn identity(pod: &Pod, c: &Container) -> Result<Identity, ConfigError> {
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let uid = csc.run_as_user.or(psc.run_as_user);
    let gid = csc.run_as_group.or(psc.run_as_group);
    let non_root = csc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false);
    if non_root && uid.is_none_or(|u| u == 0) {
        let id = format!(
            "pod: \"{}_{}({})\", container: {}",
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.uid.as_deref().unwrap_or(""),
            c.name
        );
        return Err(match uid {
            Some(_) => format!("container's runAsUser breaks non-root policy ({id})"),
            None => format!("container has runAsNonRoot and image will run as root ({id})"),
        });
    }
    let mut groups: Vec<i64> = psc.fs_group.into_iter().collect();
    groups.extend(psc.supplemental_groups.iter().flatten().copied());
    let user = match (uid, gid) {
        (None, None) if groups.is_empty() => None,
        (u, g) => Some((u.unwrap_or(0), g.unwrap_or(0), groups)),
    };
    Ok(Identity {
        user,
        no_new_privs: csc.allow_privilege_escalation == Some(false),
    })
}

/// The container's volume mounts: (host directory of the volume, path, read-only). Secret,
/// ConfigMap, projected and downwardAPI volumes are always read-only, as the kubelet mounts them.
pub fn mounts(pod: &Pod, c: &Container, host_dir: impl Fn(&str) -> PathBuf) -> Vec<Mount> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let always_ro = volumes.iter().any(|v| {
                v.name == m.name
                    && (v.secret.is_some()
                        || v.config_map.is_some()
                        || v.projected.is_some()
                        || v.downward_api.is_some())
            });
            let mut dir = host_dir(&m.name);
            if let Some(sp) = m.sub_path.as_ref().filter(|s| !s.is_empty()) {
                dir = dir.join(sp);
            }
            Mount {
                host_dir: dir,
                path: PathBuf::from(&m.mount_path),
                read_only: always_ro || m.read_only == Some(true),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_the_mapped_binary_or_a_host_program() {
        let bin = Path::new("/opt/bin/multi-casskop");
        let env = HashMap::from([("NS".to_string(), "prod".to_string())]);
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "image": "example/multi-casskop:1.0",
            "command": ["multi-casskop"], "args": ["-l$(NS)", "$$(NS)"]}))
        .unwrap();
        assert_eq!(
            program(&c, bin, &env),
            (
                "/opt/bin/multi-casskop".to_string(),
                vec!["-lprod".to_string(), "$(NS)".to_string()]
            )
        );
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "image": "sh", "command": ["/bin/sh", "-c", "echo hi"]}))
        .unwrap();
        assert_eq!(program(&c, bin, &env).0, "/bin/sh");
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "image": "x", "args": ["a"]}))
        .unwrap();
        assert_eq!(
            program(&c, bin, &env),
            ("/opt/bin/multi-casskop".to_string(), vec!["a".to_string()])
        );
    }

    #[test]
    fn image_maps_by_exact_name_then_without_tag() {
        let images = BTreeMap::from([
            ("example/app".to_string(), PathBuf::from("/a")),
            ("example/app:2".to_string(), PathBuf::from("/b")),
        ]);
        assert_eq!(
            image_binary(&images, "example/app:2"),
            Some(&PathBuf::from("/b"))
        );
        assert_eq!(
            image_binary(&images, "example/app:1"),
            Some(&PathBuf::from("/a"))
        );
        assert_eq!(image_binary(&images, "localhost:5000/other"), None);
    }
}
