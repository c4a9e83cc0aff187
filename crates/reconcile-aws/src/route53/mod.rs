//! Route 53: hosted zones and their records, and the DNS names both share.

pub mod route53_record;
pub mod route53_zone;

/// A zone id as Route 53 takes it: without the `/hostedzone/` that its
/// answers put in front.
pub fn bare_zone_id(id: &str) -> &str {
    id.trim().trim_start_matches("/hostedzone/")
}

/// A DNS name as Route 53 compares it: lower case, no trailing dot, and the
/// `*` of a wildcard as itself rather than the octal escape Route 53 answers
/// with (`\052`).
pub fn norm_name(name: &str) -> String {
    name.trim()
        .replace("\\052", "*")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `name` (normal form) lies in the zone `zone` (normal form): the
/// apex or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// The fully qualified name of a record declared as `name` in the zone
/// `zone`: a name with a trailing dot, or one that ends with the zone's name,
/// is fully qualified; any other name is relative to the zone. `Err` for a
/// fully qualified name outside the zone, or one that ends with the zone's
/// top-level domain (`auth.otherhealth.tech` in `maxhealth.tech`): written
/// fully qualified, it names another zone.
pub fn qualify(name: &str, zone: &str) -> Result<String, String> {
    let zone = norm_name(zone);
    let absolute = name.trim().ends_with('.');
    let n = norm_name(name);
    if n.is_empty() || n == "@" {
        return Ok(zone);
    }
    if in_zone(&n, &zone) {
        return Ok(n);
    }
    let tld = zone.rsplit('.').next().unwrap_or_default();
    let looks_absolute = n.contains('.') && n.rsplit('.').next() == Some(tld);
    if absolute || looks_absolute {
        return Err(format!(
            "the name \"{name}\" is outside the zone `{zone}`; write it relative to the zone \
             (like \"auth\") or as a name ending in `.{zone}`"
        ));
    }
    Ok(format!("{n}.{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_qualify_within_their_zone() {
        let z = "maxhealth.tech";
        assert_eq!(qualify("auth", z).unwrap(), "auth.maxhealth.tech");
        assert_eq!(qualify("api.auth", z).unwrap(), "api.auth.maxhealth.tech");
        assert_eq!(
            qualify("Auth.MaxHealth.Tech.", z).unwrap(),
            "auth.maxhealth.tech"
        );
        assert_eq!(qualify("maxhealth.tech", z).unwrap(), z);
        assert_eq!(qualify("@", z).unwrap(), z);
        assert_eq!(
            qualify("\\052.maxhealth.tech.", z).unwrap(),
            "*.maxhealth.tech"
        );
        assert!(qualify("auth.example.com.", z).is_err());
        assert!(qualify("auth.otherhealth.tech", z).is_err());
        assert_eq!(bare_zone_id("/hostedzone/Z12"), "Z12");
        assert!(in_zone("a.b.c", "b.c") && !in_zone("ab.c", "b.c"));
    }
}
