//! `secret_target_attachment`: writes a database's connection details (host,
//! port, engine, identifier) into its credentials secret, as CDK's
//! `secret.attach(instance)` and CloudFormation's `SecretTargetAttachment` do.
//!
//! The secret's value holds the password too, so it is read and rewritten only
//! inside `Sensitive`: the connection keys are merged into the JSON object in
//! memory and the object goes straight back to Secrets Manager. What reaches
//! `Observed`, plans and state is the connection keys alone, which are no
//! secret. Its id is the secret's ARN: a secret has at most one attachment.

use crate::kit::error::at;
use crate::kit::fields::{diagnostics, referenced, refuse, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use crate::secretsmanager::secret::{batch_values, is_gone, put_value, single_value};
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

pub struct SecretTargetAttachment;

/// Each managed field with the JSON key it is written under (RDS's and
/// CloudFormation's names, which drivers and rotation functions read).
const KEYS: &[(&str, &str)] = &[
    ("host", "host"),
    ("port", "port"),
    ("engine", "engine"),
    ("db_instance_identifier", "dbInstanceIdentifier"),
    ("db_cluster_identifier", "dbClusterIdentifier"),
    ("dbname", "dbname"),
];

pub static SCHEMA: Schema = Schema {
    kind: "secret_target_attachment",
    doc: "Writes a database's connection details into its credentials secret, as CDK's \
          `secret.attach(instance)` does: the secret's JSON gains `host`, `port`, `engine`, \
          `dbInstanceIdentifier` (or `dbClusterIdentifier`) and, if given, `dbname`, beside \
          the `username` and `password` already there. The value is read and rewritten in \
          memory only: the password never reaches plans, state or logs, and is carried over \
          untouched. The database reads its password from the secret and the attachment \
          reads the database's address, so the attachment is its own resource: a field of \
          `secret` would make a cycle. Observing reads the values with one \
          BatchGetSecretValue per 20 attachments. A connection key changed or removed out of \
          band is drift, repaired by writing a new version. Deleting the attachment takes \
          its keys out of the secret again. The secret must hold a JSON object (a `generate` \
          with a `template`, or a value a person set); one fed by `value_from_env` is refused, \
          since the two would overwrite each other. Not taggable: the secret carries the tags.",
    fields: &[
        Field::new(
            "secret_id",
            Ty::Str,
            "The credentials secret, like \"${secret.db_credentials.arn}\". Changing it moves \
             the keys to the new secret (a replacement).",
        )
        .required()
        .force_new(),
        Field::new(
            "host",
            Ty::Str,
            "The database's address, like \"${db_instance.main.endpoint}\".",
        )
        .required(),
        Field::new(
            "port",
            Ty::Int,
            "The port, like \"${db_instance.main.port}\".",
        )
        .required()
        .range(1, 65535),
        Field::new(
            "engine",
            Ty::Str,
            "The engine, like \"${db_instance.main.engine}\" (\"postgres\").",
        )
        .required(),
        Field::new(
            "db_instance_identifier",
            Ty::Str,
            "For an instance: its identifier, like \"${db_instance.main.id}\". Exclusive with \
             `db_cluster_identifier`.",
        ),
        Field::new(
            "db_cluster_identifier",
            Ty::Str,
            "For an Aurora cluster: its identifier, like \"${db_cluster.main.id}\". Exclusive \
             with `db_instance_identifier`.",
        ),
        Field::new(
            "dbname",
            Ty::Str,
            "The database name to connect to, written as `dbname` when given.",
        ),
    ],
    attributes: &[("id", "The secret's ARN.")],
    taggable: false,
};

type Problem = (&'static str, String, String);

/// Problems visible in one declaration alone.
fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    match (
        f.contains_key("db_instance_identifier"),
        f.contains_key("db_cluster_identifier"),
    ) {
        (true, true) => out.push((
            "db_cluster_identifier",
            "`db_instance_identifier` and `db_cluster_identifier` are both set".into(),
            "keep the one naming the database this secret belongs to".into(),
        )),
        (false, false) => out.push((
            "",
            "names no database".into(),
            "set `db_instance_identifier = \"${db_instance.NAME.id}\"` (or \
             `db_cluster_identifier` for an Aurora cluster)"
                .into(),
        )),
        _ => {}
    }
    out
}

/// Problems only visible with the whole stack: the secret declared here must
/// be able to hold the keys, and only one attachment may write them.
fn stack_problems(stack: &Stack, r: &Resource) -> Vec<Problem> {
    let mut out = Vec::new();
    let secret_id = r.fields.get("secret_id");
    if let Some(secret) = referenced(stack, secret_id, "secret") {
        if secret.fields.contains_key("value_from_env") {
            out.push((
                "secret_id",
                format!(
                    "{} takes its whole value from an environment variable at every apply, \
                     which would undo the connection keys and be undone by them",
                    secret.address
                ),
                "attach to a secret whose value is generated with a `template` (or set by a \
                 person), or put the connection details into the variable's JSON yourself"
                    .into(),
            ));
        } else if let Some(Value::Map(g)) = secret.fields.get("generate") {
            if !g.contains_key("template") {
                out.push((
                    "secret_id",
                    format!(
                        "{} generates a bare password, not a JSON object the keys can go into",
                        secret.address
                    ),
                    "give its `generate` a `template` (like `{ username = \"app\" }`) and a \
                     `key` (like \"password\")"
                        .into(),
                ));
            }
        }
    }
    if let Some(id) = secret_id.and_then(Value::as_str) {
        let first = stack.resources.values().find(|o| {
            o.kind == SCHEMA.kind && o.fields.get("secret_id").and_then(Value::as_str) == Some(id)
        });
        if let Some(first) = first.filter(|o| o.address != r.address) {
            out.push((
                "secret_id",
                format!(
                    "{} already writes connection details into this secret",
                    first.address
                ),
                "keep one attachment per secret".into(),
            ));
        }
    }
    out
}

/// The connection keys a declaration asks for, as JSON.
fn wanted(f: &Fields) -> Map<String, Json> {
    KEYS.iter()
        .filter_map(|(field, key)| {
            let v = match f.get(*field)? {
                Value::Str(s) => Json::from(s.as_str()),
                Value::Int(n) => Json::from(*n),
                _ => return None,
            };
            Some((key.to_string(), v))
        })
        .collect()
}

/// The fields an observation reports: the connection keys the secret holds.
fn fields_of(plain: &Map<String, Json>) -> Fields {
    KEYS.iter()
        .filter_map(|(field, key)| {
            let v = match plain.get(*key)? {
                Json::String(s) => Value::str(s),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::str(n.to_string()),
                },
                other => Value::str(other.to_string()),
            };
            Some((field.to_string(), v))
        })
        .collect()
}

fn observed(arn: &str, secret_id: &str, fields: Fields) -> Observed {
    let mut fields = fields;
    fields.insert("secret_id".into(), Value::str(secret_id));
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(arn));
    Observed {
        id: arn.to_string(),
        fields,
        attributes,
        tags: Default::default(),
    }
}

fn json_keys() -> Vec<&'static str> {
    KEYS.iter().map(|(_, k)| *k).collect()
}

/// Reads the secret, merges `set` into it (dropping the other connection keys)
/// and writes a new version when that changes anything. The value never
/// leaves `Sensitive`; errors name the secret, never its content.
async fn write_keys(
    cx: &Cx,
    address: &str,
    arn: &str,
    set: &Map<String, Json>,
) -> Result<(), ProviderError> {
    let Some(value) = single_value(cx, arn)
        .await
        .map_err(|e| at(address, "GetSecretValue", e))?
    else {
        return Err(ProviderError::InvalidInput(format!(
            "{address}: the secret {arn} has no value yet; give it one (or let reconcile \
             `generate` it) before attaching connection details"
        )));
    };
    let others: Vec<&str> = json_keys()
        .into_iter()
        .filter(|k| !set.contains_key(*k))
        .collect();
    let merged = value
        .with_keys(set, &others)
        .map_err(|e| ProviderError::InvalidInput(format!("{address}: {arn}: {e}")))?;
    if let Some(merged) = merged {
        put_value(cx, address, arn, &merged).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Provider for SecretTargetAttachment {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut p = problems(&r.fields);
        p.extend(stack_problems(stack, r));
        diagnostics(r, p)
    }

    /// One BatchGetSecretValue per 20 secrets. A secret that is gone, whose
    /// value is not a JSON object, or that holds none of the keys has no attachment.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let values = batch_values(cx, ids).await?;
        let keys = json_keys();
        for id in ids {
            let Some(Some(value)) = values.get(id) else {
                continue;
            };
            // A secret holding none of the keys has nothing attached (any more).
            if let Ok(plain) = value.plain_keys(&keys) {
                if !plain.is_empty() {
                    out.insert(id.clone(), observed(id, id, fields_of(&plain)));
                }
            }
        }
        Ok(out)
    }

    /// Not taggable: an interrupted create is simply written again (merging
    /// the same keys twice changes nothing).
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        refuse(want.address, problems(f))?;
        let arn = str_of(f, "secret_id").ok_or_else(|| {
            ProviderError::InvalidInput(format!(
                "{}: `secret_id` must be a known string",
                want.address
            ))
        })?;
        let set = wanted(f);
        write_keys(cx, want.address, arn, &set).await?;
        Ok(observed(arn, arn, fields_of(&set)))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        refuse(want.address, problems(want.fields))?;
        let set = wanted(want.fields);
        write_keys(cx, want.address, &live.id, &set).await?;
        let secret_id = str_of(want.fields, "secret_id").unwrap_or(&live.id);
        Ok(observed(&live.id, secret_id, fields_of(&set)))
    }

    /// Takes the connection keys out again; a secret already gone (or without
    /// a JSON value) has nothing to take out.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let Some(value) = single_value(cx, id).await? else {
            return Ok(());
        };
        let Ok(Some(stripped)) = value.with_keys(&Map::new(), &json_keys()) else {
            return Ok(());
        };
        match put_value(cx, id, id, &stripped).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // A secret scheduled for deletion refuses new versions: its keys go with it.
            Err(e) if e.code() == Some("InvalidRequestException") && is_gone(cx, id).await? => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcile_core::sensitive::Sensitive;

    fn fields(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn keys_written_and_read_back_leave_the_password_out() {
        let f = fields(&[
            (
                "secret_id",
                Value::str("arn:aws:secretsmanager:us-east-1:1:secret:db"),
            ),
            ("host", Value::str("db.example")),
            ("port", Value::Int(5432)),
            ("engine", Value::str("postgres")),
            ("db_instance_identifier", Value::str("db")),
        ]);
        let set = wanted(&f);
        assert_eq!(set["dbInstanceIdentifier"], "db");
        assert_eq!(set["port"], 5432);
        let secret = Sensitive::new(r#"{"username":"app","password":"canary-pw"}"#);
        let merged = secret.with_keys(&set, &[]).unwrap().unwrap();
        let plain = merged.plain_keys(&json_keys()).unwrap();
        let back = fields_of(&plain);
        assert_eq!(back["host"], Value::str("db.example"));
        assert_eq!(back["port"], Value::Int(5432));
        assert_eq!(back.len(), 4);
        let o = observed("arn:x", "arn:x", back);
        assert!(!format!("{o:?}").contains("canary-pw"));
        assert!(merged.expose().contains("canary-pw"));
    }

    #[test]
    fn a_database_must_be_named_once() {
        let base = [
            ("secret_id", Value::str("${secret.db.arn}")),
            ("host", Value::str("h")),
            ("port", Value::Int(1)),
            ("engine", Value::str("postgres")),
        ];
        assert_eq!(problems(&fields(&base)).len(), 1);
        let mut both = base.to_vec();
        both.push(("db_instance_identifier", Value::str("a")));
        assert!(problems(&fields(&both)).is_empty());
        both.push(("db_cluster_identifier", Value::str("b")));
        assert_eq!(problems(&fields(&both))[0].0, "db_cluster_identifier");
    }
}
