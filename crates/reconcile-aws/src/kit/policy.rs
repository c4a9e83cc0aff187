//! Policy documents (IAM, bucket and key policies): parsed as a user or AWS
//! writes them and brought to one canonical shape, so that equal meanings
//! compare equal whatever the key order, spacing or one-item lists.

use reconcile_core::model::{Fields, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Keys whose value IAM reads as a list even when written as one string.
const LISTY: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// What is wrong with a policy document as the TOML writes it, if anything,
/// as (what, what to do); `what` names the document ("the key policy"). A
/// value that is exactly one reference is only known at apply time.
pub fn document_problem(text: &str, what: &str) -> Option<(String, String)> {
    use reconcile_core::model::value::{parse_template, TemplatePart};
    if matches!(parse_template(text).as_deref(), Ok([TemplatePart::Ref(_)])) {
        return None;
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) if m.contains_key("Statement") => None,
        Ok(_) => Some((
            format!("{what} is not a policy document: it has no \"Statement\""),
            "write a JSON object with \"Version\": \"2012-10-17\" and a \"Statement\" list".into(),
        )),
        Err(e) => Some((
            format!(
                "{what} is not valid JSON: {e} (line {} column {} of the document)",
                e.line(),
                e.column()
            ),
            "fix the JSON; references such as \"${secret.db.arn}\" go inside quotes".into(),
        )),
    }
}

/// Parses a policy document as AWS or a user writes it: plain JSON, or JSON
/// URL-encoded the way IAM answers.
pub fn parse_policy(text: &str) -> Result<Json, serde_json::Error> {
    match serde_json::from_str::<Json>(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            let decoded = url_decode(text);
            if decoded != text {
                serde_json::from_str(&decoded)
            } else {
                Err(e)
            }
        }
    }
}

/// Decodes `%XX` escapes (IAM encodes documents per RFC 3986; `+` stays `+`).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// A policy in one canonical shape, so that equal meanings are equal values:
/// keys sorted, `Statement` always a list (sorted), Action/Resource and their
/// `Not` forms, principal values and condition values always sorted lists.
pub fn normalise_policy(v: &Json) -> Json {
    let Json::Object(top) = v else {
        return sort_keys(v);
    };
    let mut out = BTreeMap::new();
    for (k, x) in top {
        let x = if k == "Statement" {
            let list = match x {
                Json::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let mut stmts: Vec<Json> = list.iter().map(normalise_statement).collect();
            stmts.sort_by_key(|s| s.to_string());
            stmts.dedup();
            Json::Array(stmts)
        } else {
            sort_keys(x)
        };
        out.insert(k.clone(), x);
    }
    Json::Object(out.into_iter().collect())
}

fn normalise_statement(s: &Json) -> Json {
    let Json::Object(m) = s else {
        return sort_keys(s);
    };
    let mut out = BTreeMap::new();
    for (k, x) in m {
        let x = if LISTY.contains(&k.as_str()) {
            string_set(x)
        } else if k == "Principal" || k == "NotPrincipal" {
            match x {
                Json::Object(p) => sorted(p.iter().map(|(pk, pv)| (pk.clone(), string_set(pv)))),
                other => sort_keys(other),
            }
        } else if k == "Condition" {
            match x {
                Json::Object(ops) => sorted(ops.iter().map(|(op, keys)| {
                    let keys = match keys {
                        Json::Object(km) => {
                            sorted(km.iter().map(|(ck, cv)| (ck.clone(), string_set(cv))))
                        }
                        other => sort_keys(other),
                    };
                    (op.clone(), keys)
                })),
                other => sort_keys(other),
            }
        } else {
            sort_keys(x)
        };
        // An empty Sid is no Sid.
        if k == "Sid" && x.as_str() == Some("") {
            continue;
        }
        out.insert(k.clone(), x);
    }
    sorted(out.into_iter())
}

/// An object with its keys in order (serde_json keeps insertion order here).
fn sorted(entries: impl Iterator<Item = (String, Json)>) -> Json {
    Json::Object(entries.collect::<BTreeMap<_, _>>().into_iter().collect())
}

/// One value or many, as a sorted list without duplicates.
fn string_set(v: &Json) -> Json {
    let mut items: Vec<Json> = match v {
        Json::Array(a) => a.iter().map(sort_keys).collect(),
        other => vec![sort_keys(other)],
    };
    items.sort_by_key(|x| x.to_string());
    items.dedup();
    Json::Array(items)
}

fn sort_keys(v: &Json) -> Json {
    match v {
        Json::Object(m) => sorted(m.iter().map(|(k, x)| (k.clone(), sort_keys(x)))),
        Json::Array(a) => Json::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// The canonical text of a document: what is compared and shown in plans.
pub fn canonical_policy(text: &str) -> Result<String, serde_json::Error> {
    parse_policy(text).map(|v| normalise_policy(&v).to_string())
}

/// A policy document (or a table of them) in canonical form, so that key
/// order, spacing and one-item lists do not count as differences.
pub fn policy_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::Str(canonical_policy(s).unwrap_or_else(|_| s.clone())),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), policy_norm(x, m)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Any other JSON document (an event pattern, a target's input) in canonical
/// form: keys sorted and spacing dropped, list order kept, since it counts there.
pub fn json_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::Str(
            serde_json::from_str::<Json>(s)
                .map(|j| sort_keys(&j).to_string())
                .unwrap_or_else(|_| s.clone()),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_meanings_are_equal_documents() {
        let a = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        let b = r#"{
            "Statement": [ { "Resource": ["*"], "Action": ["s3:GetObject"], "Effect": "Allow" } ],
            "Version": "2012-10-17"
        }"#;
        assert_eq!(canonical_policy(a).unwrap(), canonical_policy(b).unwrap());
        let c = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}}"#;
        let d = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"*"}}"#;
        assert_eq!(canonical_policy(c).unwrap(), canonical_policy(d).unwrap());
        assert_ne!(canonical_policy(a).unwrap(), canonical_policy(c).unwrap());
    }

    #[test]
    fn url_encoded_documents_parse() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            canonical_policy(enc).unwrap(),
            r#"{"Statement":[],"Version":"2012-10-17"}"#
        );
        assert_eq!(url_decode("a%20b+c%2"), "a b+c%2");
    }
}
