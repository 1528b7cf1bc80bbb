//! Test hooks: a test's own code run at an exact point of a request, and resources refused outright.
//!
//! Races that real clusters lose only now and then (an object created by someone else between
//! a client's read and its write) become deterministic: the hook runs while the first answer is
//! held, so the client's next request sees what the hook did. A refused resource fails every
//! request on it while the rest of the cluster answers (one list a controller depends on failing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// What a hook runs; the answer it is attached to waits for it.
pub type HookRun = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct AnswerHook {
    verb: String,
    resource: String,
    name: String,
    code: u16,
    run: HookRun,
}

/// One-shot hooks on the answers of one cluster, and resources whose every request fails.
#[derive(Default)]
pub struct Hooks {
    pending: Mutex<Vec<AnswerHook>>,
    /// Resource (plural) -> the code every request on it is answered with.
    refused: Mutex<std::collections::BTreeMap<String, u16>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl Hooks {
    /// Once: the next `verb` request (`get`, `create`, ...) on `resource` named `name` that is
    /// answered with `code` runs `run` first, and its answer leaves when `run` is done.
    pub fn before_answer(&self, verb: &str, resource: &str, name: &str, code: u16, run: HookRun) {
        self.lock().push(AnswerHook {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
            code,
            run,
        });
    }

    /// The hook attached to this answer, if any (removed: each hook runs once).
    pub(crate) fn take(
        &self,
        verb: &str,
        resource: &str,
        name: &str,
        code: u16,
    ) -> Option<HookRun> {
        let mut pending = self.lock();
        let i = pending.iter().position(|h| {
            h.verb == verb && h.resource == resource && h.name == name && h.code == code
        })?;
        Some(pending.remove(i).run)
    }

    /// Every request on `resource` (plural, any group) is answered with `code` (an injected
    /// error, as the error-rate fault answers), until [`Hooks::accept`] is called for it.
    pub fn refuse(&self, resource: &str, code: u16) {
        self.refused_lock().insert(resource.to_string(), code);
    }

    /// Requests on `resource` are answered normally again.
    pub fn accept(&self, resource: &str) {
        self.refused_lock().remove(resource);
    }

    /// The code a request on `resource` is refused with, if it is.
    pub(crate) fn refusal(&self, resource: &str) -> Option<u16> {
        self.refused_lock().get(resource).copied()
    }

    fn refused_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, u16>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AnswerHook>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
