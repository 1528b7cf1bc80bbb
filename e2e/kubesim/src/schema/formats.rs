//! String formats kube-apiserver checks in custom resources (`date-time`, `date`, `uuid`, `byte`, `ipv4`, ...).
use base64::Engine;

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok()
}

/// RFC 3339 with a zone (`Z` or an offset), optionally with fractional seconds.
fn is_date_time(s: &str) -> bool {
    s.len() > 19
        && s.as_bytes()
            .get(10)
            .is_some_and(|c| matches!(c, b'T' | b't'))
        && s.parse::<jiff::Timestamp>().is_ok()
}

/// Whether `s` is valid for `format`; formats kube does not check in CRs are always valid.
pub fn valid(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => is_date_time(s),
        "date" => is_date(s),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => is_uuid(s),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        }),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 255
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn date_time_needs_a_zone_and_dates_are_calendar_days() {
        assert!(valid("date-time", "2024-05-01T10:00:00Z"));
        assert!(valid("date-time", "2024-05-01T10:00:00.123+02:00"));
        assert!(!valid("date-time", "yesterday"));
        assert!(!valid("date-time", "2024-05-01"));
        assert!(valid("date", "2024-02-29"));
        assert!(!valid("date", "2023-02-29"));
        assert!(valid("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(!valid("uuid", "123"));
        assert!(valid("int32", "anything"));
    }
}
