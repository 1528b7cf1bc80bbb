//! What is known of each remote's token: its expiry and whether renewing it fails, for status and check.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::token_expiry::{now, rfc3339};

/// One remote's token, as the renewal last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenReport {
    /// Expiry (Unix seconds) of the token the site's credentials hold; `None` when it cannot be
    /// told (see `unscheduled`).
    pub expires: Option<i64>,
    /// Why the token is not renewed: a legacy token that never expires, an opaque token.
    pub unscheduled: Option<String>,
    /// The last renewal failed: what failed and the fix. Cleared by a renewal that works.
    pub renewal_failed: Option<String>,
}

impl TokenReport {
    /// Whether the token has expired at `now` (Unix seconds).
    pub fn expired_at(&self, now: i64) -> Option<i64> {
        self.expires.filter(|e| *e <= now)
    }

    /// What a user must know about the site's token now, if anything: it expired, or its
    /// renewal fails (with the fix). `site` names the site in the message.
    pub fn problem(&self, site: &str) -> Option<String> {
        if let Some(exp) = self.expired_at(now()) {
            let why = self
                .renewal_failed
                .as_deref()
                .map(|f| format!(": {f}"))
                .unwrap_or_default();
            return Some(format!(
                "site {site}: token expired at {}{why}",
                rfc3339(exp)
            ));
        }
        self.renewal_failed.as_ref().map(|f| {
            let until = self
                .expires
                .map(|e| {
                    format!(
                        "; the current token is used until it expires at {}",
                        rfc3339(e)
                    )
                })
                .unwrap_or_default();
            format!("site {site}: {f}{until}")
        })
    }

    /// The expiry as `check` and `status` show it: a time, `expired <time>`, or why unknown.
    pub fn expiry_text(&self) -> String {
        match (self.expires, &self.unscheduled) {
            (Some(e), _) if e <= now() => format!("expired {}", rfc3339(e)),
            (Some(e), _) => rfc3339(e),
            (None, Some(why)) => format!("not renewed ({why})"),
            (None, None) => "unknown".to_string(),
        }
    }
}

/// Every remote's [`TokenReport`], by site name.
#[derive(Default)]
pub struct TokenReports {
    by_site: RwLock<BTreeMap<String, TokenReport>>,
}

impl TokenReports {
    /// The report of `site`, if its token was looked at.
    pub fn get(&self, site: &str) -> Option<TokenReport> {
        self.by_site
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(site)
            .cloned()
    }

    /// Replaces `site`'s report; true when what a user is shown ([`TokenReport::problem`])
    /// changed.
    pub fn set(&self, site: &str, report: TokenReport) -> bool {
        let mut map = self
            .by_site
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = map.get(site).and_then(|r| r.problem(site));
        let after = report.problem(site);
        map.insert(site.to_string(), report);
        before != after
    }

    /// Forgets sites no longer configured.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.by_site
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| keep(k));
    }

    /// `reason` (why `site` cannot be reached) with the token's expiry when it has expired: a
    /// 401 from a site whose token expired then says so.
    pub fn explain_unreachable(&self, site: &str, reason: String) -> String {
        match self.get(site).and_then(|r| r.expired_at(now())) {
            Some(exp) if !reason.contains("token expired") => {
                format!("{reason} (token expired at {})", rfc3339(exp))
            }
            _ => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_token_is_named_with_its_expiry_and_the_renewal_failure() {
        let r = TokenReport {
            expires: Some(0),
            unscheduled: None,
            renewal_failed: Some("cannot renew: forbidden; fix: grant it".into()),
        };
        let p = r.problem("dc2").unwrap();
        assert!(
            p.starts_with("site dc2: token expired at 1970-01-01T00:00:00Z: cannot renew"),
            "{p}"
        );
        assert_eq!(r.expiry_text(), "expired 1970-01-01T00:00:00Z");
        let reports = TokenReports::default();
        reports.set("dc2", r);
        assert_eq!(
            reports.explain_unreachable("dc2", "401 Unauthorized".into()),
            "401 Unauthorized (token expired at 1970-01-01T00:00:00Z)"
        );
        assert_eq!(
            reports.explain_unreachable("dc3", "refused".into()),
            "refused"
        );
    }

    #[test]
    fn a_failing_renewal_says_the_current_token_is_still_used() {
        let r = TokenReport {
            expires: Some(now() + 3600),
            unscheduled: None,
            renewal_failed: Some("renewal forbidden".into()),
        };
        let p = r.problem("dc2").unwrap();
        assert!(
            p.contains(
                "site dc2: renewal forbidden; the current token is used until it expires at"
            ),
            "{p}"
        );
        let ok = TokenReport {
            renewal_failed: None,
            ..r
        };
        assert_eq!(ok.problem("dc2"), None);
        let reports = TokenReports::default();
        assert!(
            !reports.set("dc2", ok),
            "a report without a problem changes nothing shown"
        );
    }
}
