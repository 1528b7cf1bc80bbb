//! Numbered progress lines of `register` and `export` on stderr, and how a failed step reads.

use std::process::ExitCode;

/// One progress line per step on stderr; a failure names the cluster, the step and the fix.
pub struct Steps {
    cmd: &'static str,
    n: usize,
    total: usize,
    current: String,
}

impl Steps {
    pub fn new(cmd: &'static str, total: usize) -> Self {
        Self {
            cmd,
            n: 0,
            total,
            current: String::new(),
        }
    }
    pub fn begin(&mut self, step: &str) {
        self.n += 1;
        self.current = step.to_string();
    }
    pub fn ok(&self, detail: &str) {
        eprintln!(
            "{}: [{}/{}] {}: {detail}",
            self.cmd, self.n, self.total, self.current
        );
    }
    pub fn fail(&self, cluster: &str, what: &str, fix: &str) -> ExitCode {
        eprintln!(
            "{}: [{}/{}] {}: FAILED on cluster {cluster}: {what}",
            self.cmd, self.n, self.total, self.current
        );
        eprintln!("{}: fix: {fix}", self.cmd);
        ExitCode::from(1)
    }
}
