//! Durations on the command line (`--resync`, `--token-ttl`): `1h30m`, `90s`, `500ms`, `7d`.
//!
//! The grammar is the compact one of kubectl and Go: whole numbers, each followed by a unit
//! (`ms`, `s`, `m`, `h`, `d`), no spaces. It is checked here so that every message names the
//! input and what is wrong with it; `jiff` then does the arithmetic (days are 24 hours).

use std::time::Duration;

use jiff::{Span, SpanRelativeTo};

/// The units a duration may use, in the order the messages list them.
const UNITS: [&str; 5] = ["ms", "s", "m", "h", "d"];

/// A duration that cannot be parsed; every variant names the input.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing (or only blanks) was given.
    #[error("empty duration")]
    Empty,
    /// A unit was expected where something else stands (`m`, `1h-2m`).
    #[error("invalid duration {text:?}: expected a number at {rest:?} (examples: 30s, 10m, 1h)")]
    ExpectedNumber {
        /// The whole input.
        text: String,
        /// What follows the last valid part.
        rest: String,
    },
    /// The last number has no unit (`24`, `1h30`).
    #[error("invalid duration {text:?}: a unit is missing (e.g. 24h)")]
    MissingUnit {
        /// The whole input.
        text: String,
    },
    /// A unit that is not one of `ms`, `s`, `m`, `h`, `d` (`2w`, `10 minutes`).
    #[error("invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h or d)")]
    UnknownUnit {
        /// The whole input.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// Well formed, but `jiff` refused it (out of range, units out of order).
    #[error("invalid duration {text:?}: {reason}")]
    Invalid {
        /// The whole input.
        text: String,
        /// `jiff`'s explanation.
        reason: String,
    },
    /// The duration is zero (`0s`).
    #[error("duration {text:?} must be more than zero")]
    Zero {
        /// The whole input.
        text: String,
    },
}

/// Parses `1h30m`, `90s`, `500ms`, `7d`: numbers each followed by a unit, more than zero.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    check_grammar(text)?;
    let invalid = |reason: String| DurationError::Invalid {
        text: text.to_string(),
        reason,
    };
    let span: Span = text
        .parse()
        .map_err(|e: jiff::Error| invalid(e.to_string()))?;
    let signed = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| invalid(e.to_string()))?;
    let duration = Duration::try_from(signed).map_err(|e| invalid(e.to_string()))?;
    if duration.is_zero() {
        return Err(DurationError::Zero {
            text: text.to_string(),
        });
    }
    Ok(duration)
}

/// [`parse`], or a bare number of seconds (`45`), as `--resync` has always accepted.
pub fn parse_or_seconds(text: &str) -> Result<Duration, DurationError> {
    match text.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse(text),
    }
}

/// Checks `text` is a sequence of `<digits><unit>` with known units, naming the first problem.
fn check_grammar(text: &str) -> Result<(), DurationError> {
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::ExpectedNumber {
                text: text.to_string(),
                rest: rest.to_string(),
            });
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit {
                text: text.to_string(),
            });
        }
        if !UNITS.contains(&unit) {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_usual_units() {
        assert_eq!(parse_or_seconds("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_or_seconds("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_or_seconds("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_or_seconds("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_or_seconds("45"), Ok(Duration::from_secs(45)));
        assert!(parse_or_seconds("10 minutes").is_err());
        assert!(parse_or_seconds("m").is_err());
        assert!(parse_or_seconds("0s").is_err());
        assert!(parse_or_seconds("").is_err());
    }
}
