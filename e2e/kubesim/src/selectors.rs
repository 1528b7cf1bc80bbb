//! Label and field selectors: kube's grammar, error wording and matching rules.
//!
//! The label grammar and messages follow `k8s.io/apimachinery/pkg/labels/selector.go`; field
//! selectors follow `pkg/fields/selector.go` plus the per-resource field label conversions of
//! kube-apiserver (`field label not supported: foo`).

use serde_json::{Map, Value};

use crate::validation::{go_quote, label_value_errors, qualified_name_errors};

/// Operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `a=b` / `a==b`
    Equals,
    /// `a!=b`
    NotEquals,
    /// `a in (x,y)`
    In,
    /// `a notin (x,y)`
    NotIn,
    /// `a`
    Exists,
    /// `!a`
    DoesNotExist,
    /// `a>5`
    GreaterThan,
    /// `a<5`
    LessThan,
}

/// One requirement of a label selector (`key op values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    pub op: LabelOp,
    pub values: Vec<String>,
}

/// A parsed label selector: the AND of its requirements; empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector(Vec<LabelRequirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    In,
    NotIn,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
    Error(String),
}

impl Tok {
    fn literal(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Bang => "!".into(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
            Tok::End => String::new(),
            Tok::Error(s) => s.clone(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_token(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::Close,
        "," => Tok::Comma,
        "!" => Tok::Bang,
        "==" => Tok::DoubleEq,
        "=" => Tok::Eq,
        ">" => Tok::Gt,
        "<" => Tok::Lt,
        "!=" => Tok::NotEq,
        "(" => Tok::Open,
        _ => return None,
    })
}

fn lex(input: &str) -> Vec<Tok> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
            i += 1;
        }
        if i >= chars.len() {
            out.push(Tok::End);
            return out;
        }
        if is_special(chars[i]) {
            // Longest match among the special symbols, like kube's scanSpecialSymbol.
            let mut buf = String::new();
            let mut last: Option<Tok> = None;
            while i < chars.len() && is_special(chars[i]) {
                buf.push(chars[i]);
                if let Some(t) = special_token(&buf) {
                    last = Some(t);
                    i += 1;
                } else if last.is_some() {
                    break;
                } else {
                    i += 1;
                }
            }
            match last {
                Some(t) => out.push(t),
                None => {
                    out.push(Tok::Error(format!("error expected: keyword found '{buf}'")));
                    out.push(Tok::End);
                    return out;
                }
            }
        } else {
            let start = i;
            while i < chars.len() && !is_special(chars[i]) && !chars[i].is_whitespace() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident(word),
            });
        }
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    /// In "values" context `in`/`notin` are plain identifiers.
    fn lookahead(&self, values: bool) -> Tok {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        match t {
            Tok::In | Tok::NotIn if values => Tok::Ident(t.literal()),
            t => t,
        }
    }

    fn consume(&mut self, values: bool) -> Tok {
        let t = self.lookahead(values);
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut reqs = Vec::new();
        loop {
            match self.lookahead(true) {
                Tok::Ident(_) | Tok::Bang => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match self.consume(true) {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let t = self.lookahead(true);
                            if !matches!(t, Tok::Ident(_) | Tok::Bang) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let mut op = None;
        let mut tok = self.consume(true);
        if tok == Tok::Bang {
            op = Some(LabelOp::DoesNotExist);
            tok = self.consume(true);
        }
        let Tok::Ident(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.literal()));
        };
        let key_errs = qualified_name_errors(&key);
        if !key_errs.is_empty() {
            return Err(format!(
                ": Invalid value: {}: {}",
                go_quote(&key),
                key_errs.join("; ")
            ));
        }
        if matches!(self.lookahead(true), Tok::End | Tok::Comma) && op.is_none() {
            op = Some(LabelOp::Exists);
        }
        if let Some(op) = op {
            return Ok(LabelRequirement {
                key,
                op,
                values: Vec::new(),
            });
        }
        let op = match self.consume(false) {
            Tok::In => LabelOp::In,
            Tok::Eq | Tok::DoubleEq => LabelOp::Equals,
            Tok::Gt => LabelOp::GreaterThan,
            Tok::Lt => LabelOp::LessThan,
            Tok::NotIn => LabelOp::NotIn,
            Tok::NotEq => LabelOp::NotEquals,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        };
        let mut values = match op {
            LabelOp::In | LabelOp::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        values.sort();
        values.dedup();
        validate_requirement(&key, op, &values)?;
        Ok(LabelRequirement { key, op, values })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let t = self.consume(true);
        if t != Tok::Open {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        let t = self.lookahead(true);
        match t {
            Tok::Ident(_) | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                if self.consume(true) != Tok::Close {
                    return Err(format!("found '{}', expected: ')'", t.literal()));
                }
                Ok(s)
            }
            Tok::Close => {
                self.consume(true);
                Ok(vec![String::new()])
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            match self.consume(true) {
                Tok::Ident(v) => {
                    s.push(v);
                    match self.lookahead(true) {
                        Tok::Comma => continue,
                        Tok::Close => return Ok(s),
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    match self.lookahead(true) {
                        Tok::Close => {
                            s.push(String::new());
                            return Ok(s);
                        }
                        Tok::Comma => {
                            self.consume(true);
                            s.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(true), Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume(true) {
            Tok::Ident(v) => Ok(vec![v]),
            t => Err(format!("found '{}', expected: identifier", t.literal())),
        }
    }
}

fn validate_requirement(key: &str, op: LabelOp, values: &[String]) -> Result<(), String> {
    let mut errs = Vec::new();
    if matches!(op, LabelOp::GreaterThan | LabelOp::LessThan) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errs.push(format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                    go_quote(v)
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value_errors(v);
        if !msgs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(v),
                msgs.join("; ")
            ));
        }
    }
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

impl LabelSelector {
    /// Parses kube's label selector syntax; errors are worded as kube-apiserver words them.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser {
            toks: lex(s),
            pos: 0,
        };
        let mut reqs = p.parse()?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector(reqs))
    }

    /// True when the selector has no requirement.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `labels` (an object's `metadata.labels`) satisfy every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.0.iter().all(|r| {
            let v = labels.get(&r.key).and_then(Value::as_str);
            match r.op {
                LabelOp::Equals | LabelOp::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                LabelOp::NotEquals | LabelOp::NotIn => {
                    v.is_none_or(|v| !r.values.iter().any(|x| x == v))
                }
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
                LabelOp::GreaterThan | LabelOp::LessThan => {
                    let (Some(Ok(have)), Some(Ok(want))) = (
                        v.map(str::parse::<i64>),
                        r.values.first().map(|s| s.parse::<i64>()),
                    ) else {
                        return false;
                    };
                    if r.op == LabelOp::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

/// One term of a field selector: `field=value`, `field==value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

/// A parsed field selector: the AND of its terms; empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector(Vec<FieldRequirement>);

/// Field labels kube-apiserver accepts for a built-in resource besides metadata.name/namespace,
/// and whether the resource registers its own conversion (which words the error
/// `field label not supported: X`); resources without one use kube's default wording.
pub fn resource_field_labels(resource: &str) -> (&'static [&'static str], bool) {
    match resource {
        "pods" => (
            &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            true,
        ),
        "secrets" => (&["type"], true),
        "namespaces" => (&["status.phase"], true),
        "nodes" => (&["spec.unschedulable"], true),
        "events" => (
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            true,
        ),
        "services" => (&["spec.clusterIP", "spec.type"], true),
        "replicationcontrollers" => (&["spec.replicas", "status.replicas"], true),
        "statefulsets" => (&["status.successful"], true),
        "jobs" => (&["status.successful"], true),
        "serviceaccounts" | "persistentvolumeclaims" | "persistentvolumes" => (&[], true),
        _ => (&[], false),
    }
}

impl FieldSelector {
    /// Parses a field selector accepting only `metadata.name` and `metadata.namespace`
    /// (every resource supports those); other fields give `field label not supported: X`.
    #[cfg(test)]
    pub fn parse(s: &str) -> Result<Self, String> {
        let sel = Self::parse_syntax(s)?;
        sel.check_fields(&[], true)?;
        Ok(sel)
    }

    /// Parses a field selector for a built-in `resource` (plural), accepting the extra field
    /// labels kube-apiserver supports for it (e.g. `spec.nodeName` for pods, `type` for secrets).
    pub fn parse_for_resource(s: &str, resource: &str) -> Result<Self, String> {
        let sel = Self::parse_syntax(s)?;
        let (extra, registered) = resource_field_labels(resource);
        sel.check_fields(extra, registered)?;
        Ok(sel)
    }

    /// Parses a field selector for a custom resource: metadata.name, metadata.namespace when
    /// namespaced, and the CRD's `selectableFields` (paths like `.spec.color`, leading dot optional).
    pub fn parse_for_custom_resource(
        s: &str,
        namespaced: bool,
        selectable_fields: &[&str],
    ) -> Result<Self, String> {
        let sel = Self::parse_syntax(s)?;
        for r in &sel.0 {
            let ok = r.field == "metadata.name"
                || (namespaced && r.field == "metadata.namespace")
                || selectable_fields
                    .iter()
                    .any(|f| f.trim_start_matches('.') == r.field);
            if !ok {
                return Err(format!("field label not supported: {}", r.field));
            }
        }
        Ok(sel)
    }

    /// Parses the syntax only (any field name), like kube's `fields.ParseSelector`.
    pub fn parse_syntax(s: &str) -> Result<Self, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut reqs = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(rhs)?;
            reqs.push(FieldRequirement {
                field: lhs.to_string(),
                value,
                negate: op == "!=",
            });
        }
        Ok(FieldSelector(reqs))
    }

    fn check_fields(&self, extra: &[&str], registered: bool) -> Result<(), String> {
        for r in &self.0 {
            let known = r.field == "metadata.name"
                || r.field == "metadata.namespace"
                || extra.contains(&r.field.as_str());
            if !known {
                return Err(if registered {
                    format!("field label not supported: {}", r.field)
                } else {
                    format!(
                        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                        go_quote(&r.field)
                    )
                });
            }
        }
        Ok(())
    }

    /// The terms, sorted as kube sorts them.
    #[cfg(test)]
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.0
    }

    /// If the selector pins `metadata.name` with `=` (kube's `RequiresExactMatch`), that name.
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negate)
            .map(|r| r.value.as_str())
    }

    /// True when every term holds for `obj`; a missing field reads as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let have = field_value(obj, &r.field);
            (have == r.value) != r.negate
        })
    }
}

/// The string value of a dotted field path as kube's field sets see it ("" when absent).
pub fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            in_slash = false;
            cur.push(c);
        } else if c == '\\' {
            in_slash = true;
            cur.push(c);
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: unterminated escape sequence".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_and_inequality_forms_match_like_kube() {
        let l = labels(json!({"app": "cassandra", "tier": "db"}));
        assert!(LabelSelector::parse("app=cassandra").unwrap().matches(&l));
        assert!(LabelSelector::parse("app==cassandra").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app!=cassandra").unwrap().matches(&l));
        assert!(LabelSelector::parse("app!=web").unwrap().matches(&l));
        // != matches objects without the label at all
        assert!(LabelSelector::parse("zone!=a").unwrap().matches(&l));
        assert!(!LabelSelector::parse("zone=a").unwrap().matches(&l));
    }

    #[test]
    fn set_based_and_existence_requirements() {
        let l = labels(json!({"app": "cassandra", "tier": "db"}));
        assert!(
            LabelSelector::parse("app in (web, cassandra)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app notin (cassandra)")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelSelector::parse("zone notin (a)").unwrap().matches(&l));
        assert!(LabelSelector::parse("tier").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!tier").unwrap().matches(&l));
        assert!(LabelSelector::parse("!zone").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("app=cassandra,tier,!zone")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app=cassandra,tier=web")
                .unwrap()
                .matches(&l)
        );
    }

    #[test]
    fn in_and_notin_are_identifiers_in_value_position() {
        let l = labels(json!({"mode": "in"}));
        assert!(LabelSelector::parse("mode=in").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("mode in (in,notin)")
                .unwrap()
                .matches(&l)
        );
    }

    #[test]
    fn greater_and_less_than_compare_integers() {
        let l = labels(json!({"rank": "5"}));
        assert!(LabelSelector::parse("rank>3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("rank<3").unwrap().matches(&l));
        assert_eq!(
            LabelSelector::parse("rank>x").unwrap_err(),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = LabelSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&Map::new()));
        assert!(LabelSelector::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_are_worded_like_kube() {
        assert_eq!(
            LabelSelector::parse("a=b c").unwrap_err(),
            "found 'c', expected: ',' or 'end of string'"
        );
        assert_eq!(
            LabelSelector::parse("a b").unwrap_err(),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            LabelSelector::parse("a=b,").unwrap_err(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            LabelSelector::parse("=b").unwrap_err(),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            LabelSelector::parse("a in b").unwrap_err(),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            LabelSelector::parse("a in (b c)").unwrap_err(),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            LabelSelector::parse("a (b)").unwrap_err(),
            "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected_with_validation_messages() {
        let err = LabelSelector::parse("app=-x").unwrap_err();
        assert!(
            err.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be an empty string"),
            "{err}"
        );
        let err = LabelSelector::parse("a/b/c=x").unwrap_err();
        assert!(
            err.starts_with("unable to parse requirement: : Invalid value: \"a/b/c\": a qualified name must consist"),
            "{err}"
        );
    }

    #[test]
    fn empty_value_forms_are_accepted() {
        let l = labels(json!({"a": ""}));
        assert!(LabelSelector::parse("a=").unwrap().matches(&l));
        assert!(LabelSelector::parse("a in ()").unwrap().matches(&l));
        assert!(LabelSelector::parse("a in (,x)").unwrap().matches(&l));
    }

    #[test]
    fn field_selector_matches_name_and_namespace() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns1"}});
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.name==a,metadata.namespace=ns1")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=ns1")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.name!=b")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("").unwrap().matches(&obj));
        assert_eq!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .exact_name(),
            Some("a")
        );
    }

    #[test]
    fn unknown_field_labels_are_refused_like_kube() {
        assert_eq!(
            FieldSelector::parse("foo=bar").unwrap_err(),
            "field label not supported: foo"
        );
        assert_eq!(
            FieldSelector::parse_for_resource("foo=bar", "pods").unwrap_err(),
            "field label not supported: foo"
        );
        assert_eq!(
            FieldSelector::parse_for_resource("foo=bar", "configmaps").unwrap_err(),
            "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            FieldSelector::parse_for_custom_resource("metadata.namespace=x", false, &[])
                .unwrap_err(),
            "field label not supported: metadata.namespace"
        );
        assert!(
            FieldSelector::parse_for_custom_resource("spec.color=red", true, &[".spec.color"])
                .is_ok()
        );
    }

    #[test]
    fn resource_specific_fields_match_nested_and_typed_values() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "hostNetwork": true}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse_for_resource("spec.nodeName=n1,status.phase!=Pending", "pods")
            .unwrap();
        assert!(s.matches(&pod));
        assert!(
            FieldSelector::parse_for_resource("spec.hostNetwork=true", "pods")
                .unwrap()
                .matches(&pod)
        );
        let secret =
            json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"});
        assert!(
            FieldSelector::parse_for_resource(
                "type=kubernetes.io/service-account-token",
                "secrets"
            )
            .unwrap()
            .matches(&secret)
        );
        // a missing field reads as the empty string
        assert!(
            FieldSelector::parse_for_resource("spec.nodeName=", "pods")
                .unwrap()
                .matches(&json!({}))
        );
    }

    #[test]
    fn field_selector_syntax_errors_and_escapes() {
        assert_eq!(
            FieldSelector::parse("metadata.name").unwrap_err(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        let s = FieldSelector::parse_syntax("a=x\\,y").unwrap();
        assert_eq!(s.requirements()[0].value, "x,y");
        assert_eq!(
            FieldSelector::parse_syntax("a=x=y").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
    }
}
