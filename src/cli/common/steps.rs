//! Numbered progress lines of `register` and `export` on stderr, and how a failed step reads.

use std::process::ExitCode;

/// One progress line per step on stderr; a failure names the cluster, the step and the fix.
pub struct Steps {
    cmd: &'static str,
    n: usize,
    total: usize,
    current: String,
}

/// A step that failed: on which cluster, what happened, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailed {
    pub cluster: String,
    pub what: String,
    pub fix: String,
}

impl StepFailed {
    /// A failure on `cluster`.
    pub fn new(cluster: &str, what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            cluster: cluster.to_string(),
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// Why a command stopped before its last step.
#[derive(Debug)]
pub enum Stop {
    /// A step failed: printed with its fix, exit code 1.
    Step(StepFailed),
    /// Something no step foresees (an object that does not serialise): left to the caller.
    Internal(anyhow::Error),
}

impl From<StepFailed> for Stop {
    fn from(f: StepFailed) -> Self {
        Stop::Step(f)
    }
}

impl From<serde_json::Error> for Stop {
    fn from(e: serde_json::Error) -> Self {
        Stop::Internal(e.into())
    }
}

impl From<crate::sites::exported::RenderError> for Stop {
    fn from(e: crate::sites::exported::RenderError) -> Self {
        Stop::Internal(e.into())
    }
}

impl Steps {
    /// A command `cmd` of `total` steps.
    pub fn new(cmd: &'static str, total: usize) -> Self {
        Self {
            cmd,
            n: 0,
            total,
            current: String::new(),
        }
    }
    /// The next step starts.
    pub fn begin(&mut self, step: &str) {
        self.n += 1;
        self.current = step.to_string();
    }
    /// The current step succeeded.
    pub fn ok(&self, detail: &str) {
        eprintln!(
            "{}: [{}/{}] {}: {detail}",
            self.cmd, self.n, self.total, self.current
        );
    }
    /// The current step failed on `cluster`: prints what and the fix; exit code 1.
    pub fn fail(&self, cluster: &str, what: &str, fix: &str) -> ExitCode {
        eprintln!(
            "{}: [{}/{}] {}: FAILED on cluster {cluster}: {what}",
            self.cmd, self.n, self.total, self.current
        );
        eprintln!("{}: fix: {fix}", self.cmd);
        ExitCode::from(1)
    }
    /// The exit code of a command that ran its steps to `result`.
    pub fn finish(&self, result: Result<(), Stop>) -> anyhow::Result<ExitCode> {
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(Stop::Step(f)) => Ok(self.fail(&f.cluster, &f.what, &f.fix)),
            Err(Stop::Internal(e)) => Err(e),
        }
    }
}
