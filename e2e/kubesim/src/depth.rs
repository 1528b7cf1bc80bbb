//! JSON request bodies as deep as kube-apiserver takes them: up to 10,000 levels, not serde_json's 128.
//!
//! kube-apiserver decodes bodies with sigs.k8s.io/json, a fork of Go's encoding/json, whose
//! scanner refuses nesting beyond `maxNestingDepth = 10000` with the SyntaxError "invalid
//! character '{' exceeded max depth" (apimachinery's util/json carries the same 10,000 limit "to
//! prevent stack overflow errors"). serde_json stops at 128 unless told otherwise; deeper
//! documents are parsed here with the limit lifted, on a stack grown for the purpose.

use serde::Deserialize;
use serde_json::Value;

/// kube-apiserver's (Go encoding/json's) nesting limit, counted from the document's root.
pub const MAX_DEPTH: usize = 10_000;
/// serde_json's own limit: documents within it need no special care.
const SERDE_JSON_DEPTH: usize = 127;
/// Stack for parsing a document deeper than [`SERDE_JSON_DEPTH`] (serde_json recurses per level).
const DEEP_PARSE_STACK: usize = 256 * 1024 * 1024;

/// Why a body was refused before parsing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooDeep {
    /// The character that opened the level beyond [`MAX_DEPTH`].
    pub(crate) opener: char,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Go's SyntaxError text for its scanner's depth check.
        write!(f, "invalid character '{}' exceeded max depth", self.opener)
    }
}

/// The deepest nesting of `bytes` as JSON, or the opener past [`MAX_DEPTH`]. Strings are
/// skipped; the syntax is left to the parser.
fn max_depth(bytes: &[u8]) -> Result<usize, TooDeep> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep {
                        opener: char::from(b),
                    });
                }
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(deepest)
}

/// Parse a JSON body as kube-apiserver would accept it. `Err(Ok(_))`: deeper than the limit.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, Result<TooDeep, serde_json::Error>> {
    let deepest = max_depth(bytes).map_err(Ok)?;
    if deepest <= SERDE_JSON_DEPTH {
        return serde_json::from_slice(bytes).map_err(Err);
    }
    stacker::grow(DEEP_PARSE_STACK, || {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        let v = Value::deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    })
    .map_err(Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn takes_what_kube_apiserver_takes_and_refuses_one_level_more() {
        let v = parse(nested(MAX_DEPTH - 1).as_bytes()).unwrap();
        assert!(v.get("a").is_some());
        // Deep values are dropped recursively: leave it to a thread with room.
        std::thread::Builder::new()
            .stack_size(DEEP_PARSE_STACK)
            .spawn(move || drop(v))
            .unwrap()
            .join()
            .unwrap();
        let too_deep = format!("[{}]", nested(MAX_DEPTH));
        let err = parse(too_deep.as_bytes()).unwrap_err().unwrap();
        assert_eq!(err.to_string(), "invalid character '{' exceeded max depth");
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!(r#"{{"a":"{}"}}"#, "[{".repeat(MAX_DEPTH));
        assert_eq!(
            parse(s.as_bytes()).unwrap()["a"].as_str().unwrap().len(),
            2 * MAX_DEPTH
        );
    }
}
