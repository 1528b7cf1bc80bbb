//! Container logs the simulated kubelet captures (current and previous run of each container) and the pods/log subresource that serves them as kube-apiserver does.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;
use tokio::sync::watch;

use crate::errors::ApiError;
use crate::http::{Body, bytes_response};

/// One run of one container: its output lines with the time each was read, as the CRI log
/// file keeps them (so `--timestamps` and `--tail` work), and whether the run is over.
#[derive(Debug)]
pub struct LogBuf {
    lines: Mutex<Vec<(String, Vec<u8>)>>,
    /// Bumped on every new line and at the end, so that followers wake up.
    changed: watch::Sender<u64>,
    ended: AtomicBool,
}

impl LogBuf {
    fn new() -> Arc<LogBuf> {
        Arc::new(LogBuf {
            lines: Mutex::new(vec![]),
            changed: watch::channel(0).0,
            ended: AtomicBool::new(false),
        })
    }

    /// Appends one line (with its newline, if it had one).
    pub fn push(&self, line: Vec<u8>) {
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            .to_string();
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((ts, line));
        self.changed.send_modify(|n| *n += 1);
    }

    /// The process is gone: followers get what is left, then the end of the stream.
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.changed.send_modify(|n| *n += 1);
    }

    fn snapshot(&self, from: usize) -> Vec<(String, Vec<u8>)> {
        let l = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        l.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[derive(Debug, Default)]
struct ContainerLogs {
    current: Option<Arc<LogBuf>>,
    previous: Option<Arc<LogBuf>>,
}

/// (namespace, pod uid, container).
type Key = (String, String, String);

/// The logs of every container the kubelet of one cluster ran; empty and disabled in a
/// cluster without a kubelet.
#[derive(Debug, Default)]
pub struct PodLogs {
    enabled: AtomicBool,
    containers: Mutex<HashMap<Key, ContainerLogs>>,
}

/// What `GET pods/NAME/log` asks for.
#[derive(Debug, Default)]
pub struct LogQuery {
    pub container: Option<String>,
    pub previous: bool,
    pub follow: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
}

impl LogQuery {
    /// Reads the PodLogOptions query parameters.
    pub fn from_query(q: &HashMap<String, String>) -> Result<LogQuery, ApiError> {
        let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
        let num = |k: &str| -> Result<Option<usize>, ApiError> {
            match q.get(k) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(|n| Some(n.max(0) as usize))
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "{k}: Invalid value: \"{v}\": must be an integer"
                        ))
                    }),
            }
        };
        Ok(LogQuery {
            container: q.get("container").filter(|c| !c.is_empty()).cloned(),
            previous: flag("previous"),
            follow: flag("follow"),
            timestamps: flag("timestamps"),
            tail_lines: num("tailLines")?,
            limit_bytes: num("limitBytes")?,
        })
    }
}

impl PodLogs {
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, ContainerLogs>> {
        self.containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new run of a container begins: the run before becomes `--previous`.
    pub fn start_run(&self, ns: &str, uid: &str, container: &str) -> Arc<LogBuf> {
        let buf = LogBuf::new();
        let mut m = self.lock();
        let e = m
            .entry((ns.into(), uid.into(), container.into()))
            .or_default();
        if let Some(cur) = e.current.take() {
            cur.end();
            e.previous = Some(cur);
        }
        e.current = Some(buf.clone());
        buf
    }

    /// The pod is gone: so are its logs.
    pub fn forget_pod(&self, ns: &str, uid: &str) {
        self.lock().retain(|(n, u, _), c| {
            let keep = !(n == ns && u == uid);
            if !keep && let Some(cur) = &c.current {
                cur.end();
            }
            keep
        });
    }

    fn buffer(&self, ns: &str, uid: &str, container: &str, previous: bool) -> Option<Arc<LogBuf>> {
        let m = self.lock();
        let c = m.get(&(ns.into(), uid.into(), container.into()))?;
        if previous {
            c.previous.clone()
        } else {
            c.current.clone()
        }
    }

    /// `GET pods/NAME/log` for `pod`, with kube-apiserver's refusals.
    pub fn serve(&self, pod: &Value, q: &LogQuery) -> Result<Response<Body>, ApiError> {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match &q.container {
            Some(c) => {
                if !names.contains(&c.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "container {c} is not valid for pod {name}"
                    )));
                }
                c.clone()
            }
            None if names.len() == 1 => names[0].to_string(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        };
        let Some(buf) = self.buffer(ns, uid, &container, q.previous) else {
            if q.previous {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
            let reason = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == container.as_str())
                .and_then(|s| s["state"]["waiting"]["reason"].as_str())
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        };
        let lines = buf.snapshot(0);
        let skip = q.tail_lines.map_or(0, |t| lines.len().saturating_sub(t));
        let start = render(&lines[skip..], q.timestamps, q.limit_bytes);
        if !q.follow || q.previous {
            return Ok(bytes_response(200, "text/plain", start));
        }
        Ok(follow_response(buf, lines.len(), start, q.timestamps))
    }
}

fn render(lines: &[(String, Vec<u8>)], timestamps: bool, limit: Option<usize>) -> Vec<u8> {
    let mut out = vec![];
    for (ts, l) in lines {
        if timestamps {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(l);
    }
    if let Some(n) = limit {
        out.truncate(n);
    }
    out
}

/// A streamed answer: what is there now, then each new line until the run ends.
fn follow_response(buf: Arc<LogBuf>, seen: usize, start: Vec<u8>, ts: bool) -> Response<Body> {
    let rx = buf.changed.subscribe();
    let first = futures::stream::once(async move {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(start)))
    });
    let rest = futures::stream::unfold((buf, rx, seen), move |(buf, mut rx, seen)| async move {
        loop {
            let ended = buf.ended.load(Ordering::SeqCst);
            if buf.len() > seen {
                let new = buf.snapshot(seen);
                let n = seen + new.len();
                let frame = hyper::body::Frame::data(Bytes::from(render(&new, ts, None)));
                return Some((Ok(frame), (buf, rx, n)));
            }
            if ended || rx.changed().await.is_err() {
                return None;
            }
        }
    });
    use futures::StreamExt;
    let body = StreamBody::new(first.chain(rest)).boxed_unsync();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}
