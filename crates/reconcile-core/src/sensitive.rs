//! `Sensitive`: a secret value that cannot be printed, logged or serialised by accident.
//!
//! Secret material (a generated password, a value read from the environment,
//! a key fetched from Secrets Manager to hand to RDS) only ever travels inside
//! this type. It has no `Display` and no `Serialize`; its `Debug` prints a
//! placeholder, so a `{:?}` in a log line or an error cannot leak it. The one way
//! out is [`Sensitive::expose`], which is greppable and used only where the
//! value goes into an AWS request or an in-memory comparison.

use std::fmt;
use zeroize::Zeroize;

/// A secret string. The bytes are overwritten when it is dropped.
pub struct Sensitive(String);

pub const REDACTED: &str = "(sensitive)";

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    /// The secret itself, for an AWS request body or an in-memory comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares without exposing either side to a caller.
    pub fn same_as(&self, other: &Sensitive) -> bool {
        // Length first, then every byte, so the time taken says little about
        // where two values first differ.
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Reads an environment variable as a secret; `None` when unset or not UTF-8.
    pub fn from_env(var: &str) -> Option<Sensitive> {
        std::env::var(var).ok().map(Sensitive)
    }

    /// One key of a JSON object secret (`{"username": .., "password": ..}`), or
    /// the whole string when `key` is `None`.
    pub fn json_key(&self, key: Option<&str>) -> Result<Sensitive, String> {
        let Some(key) = key else {
            return Ok(Sensitive(self.0.clone()));
        };
        // The parse error would quote the secret, so it is replaced by a plain sentence.
        let v: serde_json::Value = serde_json::from_str(&self.0)
            .map_err(|_| "the secret's value is not a JSON object".to_string())?;
        match v.get(key) {
            Some(serde_json::Value::String(s)) => Ok(Sensitive(s.clone())),
            Some(other) if !other.is_null() && !other.is_object() && !other.is_array() => {
                Ok(Sensitive(other.to_string()))
            }
            Some(_) => Err(format!("the secret's key `{key}` is not a string")),
            None => Err(format!("the secret has no key `{key}`")),
        }
    }

    /// The values of `keys` in a JSON object secret, for keys that hold no
    /// secret (a host, a port): the caller names them, so nothing else of the
    /// object leaves. Keys the object lacks are absent from the answer.
    pub fn plain_keys(
        &self,
        keys: &[&str],
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let v = self.object()?;
        Ok(keys
            .iter()
            .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
            .collect())
    }

    /// The JSON object secret with `set` written into it and `remove` taken
    /// out, every other key (the password) carried over untouched; `None` when
    /// that changes nothing.
    pub fn with_keys(
        &self,
        set: &serde_json::Map<String, serde_json::Value>,
        remove: &[&str],
    ) -> Result<Option<Sensitive>, String> {
        let mut v = self.object()?;
        let before = v.clone();
        for k in remove {
            v.remove(*k);
        }
        for (k, x) in set {
            v.insert(k.clone(), x.clone());
        }
        if v == before {
            return Ok(None);
        }
        serde_json::to_string(&v)
            .map(|s| Some(Sensitive(s)))
            .map_err(|_| "the secret's value could not be written back as JSON".to_string())
    }

    fn object(&self) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        // The parse error would quote the secret, so it is replaced by a plain sentence.
        match serde_json::from_str(&self.0) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err("the secret's value is not a JSON object".to_string()),
        }
    }
}

impl Clone for Sensitive {
    fn clone(&self) -> Self {
        Sensitive(self.0.clone())
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Sensitive::new("hunter2-canary");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "hunter2-canary");
    }

    #[test]
    fn compares_without_exposing() {
        assert!(Sensitive::new("a").same_as(&Sensitive::new("a")));
        assert!(!Sensitive::new("a").same_as(&Sensitive::new("b")));
        assert!(!Sensitive::new("a").same_as(&Sensitive::new("ab")));
    }

    #[test]
    fn json_key_picks_one_key_and_errors_do_not_quote_the_value() {
        let s = Sensitive::new(r#"{"username":"app","password":"canary-pw","port":5432}"#);
        assert_eq!(s.json_key(Some("password")).unwrap().expose(), "canary-pw");
        assert_eq!(s.json_key(Some("port")).unwrap().expose(), "5432");
        let e = s.json_key(Some("nope")).unwrap_err();
        assert!(!e.contains("canary-pw"), "{e}");
        let e = Sensitive::new("canary-not-json")
            .json_key(Some("password"))
            .unwrap_err();
        assert!(!e.contains("canary"), "{e}");
    }

    #[test]
    fn keys_are_merged_around_the_password_which_never_shows_in_errors() {
        let s = Sensitive::new(r#"{"username":"app","password":"canary-pw"}"#);
        let plain = s.plain_keys(&["host", "username"]).unwrap();
        assert_eq!(plain.len(), 1);
        assert_eq!(plain["username"], "app");

        let mut set = serde_json::Map::new();
        set.insert("host".into(), "db.example".into());
        set.insert("port".into(), 5432.into());
        let merged = s
            .with_keys(&set, &["dbClusterIdentifier"])
            .unwrap()
            .unwrap();
        assert_eq!(
            merged.expose(),
            r#"{"username":"app","password":"canary-pw","host":"db.example","port":5432}"#
        );
        // Already there: nothing to write.
        assert!(merged.with_keys(&set, &[]).unwrap().is_none());
        let back = merged
            .with_keys(&Default::default(), &["host", "port"])
            .unwrap()
            .unwrap();
        assert!(back.same_as(&s));

        for bad in ["canary-not-json", r#"["canary"]"#] {
            let e = Sensitive::new(bad).with_keys(&set, &[]).unwrap_err();
            assert!(!e.contains("canary"), "{e}");
            assert!(Sensitive::new(bad).plain_keys(&["x"]).is_err());
        }
    }
}
