//! Logging set-up: `RUST_LOG`, else Multi-CassKop's `LOG_LEVEL` / `LOG_TYPE=json`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Text,
    /// One JSON object per line (`LOG_TYPE=json`, as Multi-CassKop read it).
    Json,
}

/// The filter directive for Multi-CassKop's `LOG_LEVEL` values (`Debug`, `Info`, `Warn`, `Error`,
/// any case; `Trace` too). `None` for an unknown value.
///
/// ```
/// assert_eq!(multi_casskop::runtime::telemetry::level_from_log_level("DEBUG").as_deref(), Some("debug"));
/// assert_eq!(multi_casskop::runtime::telemetry::level_from_log_level("verbose"), None);
/// ```
pub fn level_from_log_level(value: &str) -> Option<String> {
    let level = match value.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" => "error",
        _ => return None,
    };
    Some(level.to_string())
}

/// The filter for a `LOG_LEVEL`: Debug and Trace apply to this controller's own logs, its
/// libraries (HTTP client, TLS) stay at info so the log stays readable; RUST_LOG gives full control.
fn directive_for(level: &str) -> String {
    match level {
        "debug" | "trace" => format!("info,multi_casskop={level}"),
        other => other.to_string(),
    }
}

/// The filter directive and format from the environment values (pure, for tests).
/// `RUST_LOG` wins; else `LOG_LEVEL`; else `info`. `LOG_TYPE=json` (any case) selects JSON.
pub fn settings_from(
    rust_log: Option<&str>,
    log_level: Option<&str>,
    log_type: Option<&str>,
) -> (String, LogFormat, Option<String>) {
    let format = match log_type {
        Some(t) if t.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    if let Some(directive) = rust_log.filter(|s| !s.trim().is_empty()) {
        return (directive.to_string(), format, None);
    }
    match log_level.filter(|s| !s.trim().is_empty()) {
        None => ("info".to_string(), format, None),
        Some(value) => match level_from_log_level(value) {
            Some(level) => (directive_for(&level), format, None),
            None => (
                "info".to_string(),
                format,
                Some(format!(
                    "LOG_LEVEL={value:?} is not one of Debug, Info, Warn, Error: using Info"
                )),
            ),
        },
    }
}

/// Install the global subscriber from the environment. Logs go to stderr.
pub fn init() {
    let env = |k: &str| std::env::var(k).ok();
    let (directive, format, warning) = settings_from(
        env("RUST_LOG").as_deref(),
        env("LOG_LEVEL").as_deref(),
        env("LOG_TYPE").as_deref(),
    );
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|e| {
        eprintln!("invalid log filter {directive:?} ({e}): using info");
        EnvFilter::new("info")
    });
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if result.is_err() {
        // Already installed (tests calling init twice): keep the first one.
        return;
    }
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_accepts_multi_casskop_spellings_in_any_case() {
        for (v, want) in [
            ("Debug", "debug"),
            ("INFO", "info"),
            ("warn", "warn"),
            ("Warning", "warn"),
            ("eRRor", "error"),
            (" Trace ", "trace"),
        ] {
            assert_eq!(level_from_log_level(v).as_deref(), Some(want), "{v}");
        }
        assert_eq!(level_from_log_level("loud"), None);
    }

    #[test]
    fn rust_log_wins_over_log_level() {
        let (d, f, w) = settings_from(Some("multi_casskop=trace"), Some("Error"), None);
        assert_eq!(d, "multi_casskop=trace");
        assert_eq!(f, LogFormat::Text);
        assert!(w.is_none());
    }

    #[test]
    fn log_level_used_when_rust_log_absent_and_json_selected_by_log_type() {
        let (d, f, _) = settings_from(None, Some("Debug"), Some("JSON"));
        assert_eq!(d, "info,multi_casskop=debug");
        assert_eq!(f, LogFormat::Json);
        let (d, f, _) = settings_from(Some(""), None, Some("console"));
        assert_eq!(d, "info");
        assert_eq!(f, LogFormat::Text);
    }

    #[test]
    fn unknown_log_level_falls_back_to_info_with_a_warning() {
        let (d, _, w) = settings_from(None, Some("chatty"), None);
        assert_eq!(d, "info");
        assert!(w.unwrap().contains("chatty"));
    }
}
