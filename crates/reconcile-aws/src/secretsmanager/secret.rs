//! `secret`: an AWS Secrets Manager secret whose value is generated once, read
//! from an environment variable at apply time, or left for a person to set.
//!
//! The value itself never leaves Secrets Manager by way of reconcile: it lives
//! in memory only inside [`Sensitive`], goes into an AWS request or an
//! in-memory comparison, and is dropped. What reaches `Observed`, plans, state
//! and logs is a verdict about it (`value_from_env` equal to its variable, or a
//! sentence saying it differs), never the value.

use crate::kit::error::at;
use crate::kit::error::unless_gone;
use crate::kit::fields::{changes_field, str_of};
use crate::kit::tags::stack_address;
use crate::kit::{adopt, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_STACK};
use reconcile_core::sensitive::Sensitive;
use std::collections::HashMap;

pub struct Secret;

/// `ListSecrets` answers at most 100 secrets a page.
const LIST_PAGE: i32 = 100;
/// `BatchGetSecretValue` takes at most 20 ids a call.
const BATCH_GET: usize = 20;
/// AWS's recovery window when none is given; also used for copies state never recorded.
const DEFAULT_RECOVERY_DAYS: i64 = 30;

/// The fields of the `generate` table: GetRandomPassword's options, plus the
/// JSON template the password is put into (CDK's `generateSecretString`).
pub const GENERATE_FIELDS: &[Field] = &[
    Field::new("length", Ty::Int, "Number of characters of the password.")
        .range(1, 4096)
        .default(Default::Int(32)),
    Field::new(
        "exclude_characters",
        Ty::Str,
        "Characters the password must not contain (quotes or `@/` that break a connection string, say).",
    ),
    Field::new(
        "exclude_punctuation",
        Ty::Bool,
        "Leave out punctuation (every printable ASCII character that is not a letter, digit or space).",
    ),
    Field::new("exclude_numbers", Ty::Bool, "Leave out digits."),
    Field::new("exclude_uppercase", Ty::Bool, "Leave out upper-case letters."),
    Field::new("exclude_lowercase", Ty::Bool, "Leave out lower-case letters."),
    Field::new("include_space", Ty::Bool, "Allow the space character."),
    Field::new(
        "require_each_included_type",
        Ty::Bool,
        "Require at least one character of every included type (AWS's default: true).",
    ),
    Field::new(
        "template",
        Ty::Map(&Ty::Str),
        "A JSON object to store, such as `{ username = \"keycloak\" }`; the password is added under `key`. Requires `key`.",
    ),
    Field::new(
        "key",
        Ty::Str,
        "The key of `template` that receives the password, such as \"password\". Requires `template`.",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "secret",
    doc: "A Secrets Manager secret. Its value is either generated once at creation \
          (`generate`), read from an environment variable at apply time \
          (`value_from_env`), or left for a person to set (neither: only the container \
          is managed). The value never appears in plans, state or logs. A generated \
          value is never regenerated: rotating it outside reconcile is not drift, and \
          editing `generate` only records the new settings. A `value_from_env` secret \
          whose live value differs from the variable is drift, compared in memory; \
          the plan names the variable, never the value. Reference a JSON key from an \
          ECS task as `\"${secret.NAME.arn}:password::\"`.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_secret_name),
            "The secret's name, unique in the account and region (`proxy-smart/keycloak-db`).",
        )
        .required()
        .force_new(),
        Field::new("description", Ty::Str, "What the secret is for."),
        Field::new(
            "kms_key_id",
            Ty::Str,
            "The KMS key that encrypts the secret, as its ARN; left out, AWS uses `aws/secretsmanager`.",
        ),
        Field::new(
            "generate",
            Ty::Object(GENERATE_FIELDS),
            "Generate the value once, at creation, with GetRandomPassword. Exclusive with `value_from_env`. \
             Compared with the last applied settings, never with AWS: a change does not regenerate.",
        )
        .local(),
        Field::new(
            "value_from_env",
            Ty::Pattern(check_env_name),
            "The environment variable whose value is stored, read when apply runs \
             (`STRIPE_SECRET_KEY`). A live value that differs from it is drift. \
             Exclusive with `generate`.",
        ),
        Field::new(
            "recovery_window_in_days",
            Ty::Int,
            "Days a deleted secret can still be restored: 7 to 30, or 0 to delete at once \
             without recovery. Applies when reconcile deletes the secret.",
        )
        .default(Default::Int(DEFAULT_RECOVERY_DAYS))
        .local(),
    ],
    attributes: &[
        ("arn", "The secret's ARN (also its id)."),
        ("name", "The secret's name."),
        (
            "version_id",
            "The id of the AWSCURRENT version; empty while the secret has no value.",
        ),
    ],
    taggable: true,
};

/// Secrets Manager names: 1 to 512 of letters, digits and `/_+=.@-`.
pub fn check_secret_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 512 {
        return Err("a secret name has 1 to 512 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits and /_+=.@- only"
        ));
    }
    Ok(())
}

/// Environment variable names as shells write them: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_env_name(s: &str) -> Result<(), String> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not an environment variable name; use letters, digits and _ (not first a digit)"
        ))
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Generate(Generate),
    Env(String),
    /// A person sets it; reconcile manages only the container.
    Unmanaged,
}

/// The `generate` table, read.
#[derive(Debug, Clone, PartialEq, std::default::Default)]
pub struct Generate {
    pub length: i64,
    pub exclude_characters: Option<String>,
    pub exclude_punctuation: Option<bool>,
    pub exclude_numbers: Option<bool>,
    pub exclude_uppercase: Option<bool>,
    pub exclude_lowercase: Option<bool>,
    pub include_space: Option<bool>,
    pub require_each_included_type: Option<bool>,
    /// Template entries, in declaration order.
    pub template: Option<IndexMap<String, Value>>,
    pub key: Option<String>,
}

impl Generate {
    pub fn from_value(v: &Value) -> Result<Generate, String> {
        let m = v
            .as_map()
            .ok_or_else(|| format!("`generate` must be a table, found {v}"))?;
        let flag = |k: &str| m.get(k).and_then(Value::as_bool);
        Ok(Generate {
            length: match m.get("length") {
                None => 32,
                Some(Value::Int(i)) => *i,
                Some(other) => {
                    return Err(format!(
                        "`generate.length` must be an integer, found {other}"
                    ))
                }
            },
            exclude_characters: m
                .get("exclude_characters")
                .and_then(Value::as_str)
                .map(str::to_string),
            exclude_punctuation: flag("exclude_punctuation"),
            exclude_numbers: flag("exclude_numbers"),
            exclude_uppercase: flag("exclude_uppercase"),
            exclude_lowercase: flag("exclude_lowercase"),
            include_space: flag("include_space"),
            require_each_included_type: flag("require_each_included_type"),
            template: m.get("template").and_then(Value::as_map).cloned(),
            key: m.get("key").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// What is wrong with these settings, as (what, what to do); empty when fine.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match (&self.template, &self.key) {
            (Some(_), None) => out.push((
                "`generate.template` is given without `generate.key`".into(),
                "add `key = \"password\"` (the template key that receives the password), or remove `template`".into(),
            )),
            (None, Some(_)) => out.push((
                "`generate.key` is given without `generate.template`".into(),
                "add `template = { username = \"...\" }`, or remove `key` to store the bare password".into(),
            )),
            _ => {}
        }
        if self.key.as_deref() == Some("") {
            out.push((
                "`generate.key` is empty".into(),
                "name the key that receives the password, such as \"password\"".into(),
            ));
        }
        let all_out = [
            self.exclude_punctuation,
            self.exclude_numbers,
            self.exclude_uppercase,
            self.exclude_lowercase,
        ]
        .iter()
        .all(|f| *f == Some(true))
            && self.include_space != Some(true);
        if all_out {
            out.push((
                "`generate` excludes every kind of character".into(),
                "allow at least one of punctuation, numbers, upper-case or lower-case letters"
                    .into(),
            ));
        }
        out
    }

    /// The string to store: the bare password, or the template object with the
    /// password under `key`.
    pub fn secret_string(&self, password: &Sensitive) -> Sensitive {
        let (Some(template), Some(key)) = (&self.template, &self.key) else {
            return password.clone();
        };
        let mut obj = serde_json::Map::new();
        for (k, v) in template {
            obj.insert(k.clone(), json_of(v));
        }
        obj.insert(
            key.clone(),
            serde_json::Value::String(password.expose().to_string()),
        );
        let object = serde_json::Value::Object(obj);
        let text = Sensitive::new(object.to_string());
        // The JSON tree holds a plain copy of the password: wipe it before it is dropped.
        if let serde_json::Value::Object(mut m) = object {
            if let Some(serde_json::Value::String(mut s)) = m.remove(key) {
                zeroize::Zeroize::zeroize(&mut s);
            }
        }
        text
    }
}

fn json_of(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(json_of).collect()),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, x)| (k.clone(), json_of(x))).collect())
        }
        Value::Unknown => serde_json::Value::Null,
        // Numbers of other kinds: their own rendering is their JSON.
        other => serde_json::from_str(&other.to_string())
            .unwrap_or_else(|_| serde_json::Value::String(other.to_string())),
    }
}

impl Source {
    pub fn of(f: &Fields) -> Result<Source, String> {
        match (f.get("generate"), f.get("value_from_env")) {
            (Some(_), Some(_)) => Err(
                "`generate` and `value_from_env` are both set; a secret's value has one source"
                    .into(),
            ),
            (Some(g), None) => Generate::from_value(g).map(Source::Generate),
            (None, Some(v)) => v
                .as_str()
                .map(|s| Source::Env(s.to_string()))
                .ok_or_else(|| format!("`value_from_env` must be a variable name, found {v}")),
            (None, None) => Ok(Source::Unmanaged),
        }
    }
}

/// Whole-resource checks of a secret's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if f.contains_key("generate") && f.contains_key("value_from_env") {
        out.push((
            "value_from_env",
            "`generate` and `value_from_env` are both set; a secret's value has one source".into(),
            "keep `generate` for a value reconcile makes once, or `value_from_env` for a value you supply; remove the other".into(),
        ));
    }
    if let Some(g) = f.get("generate") {
        match Generate::from_value(g) {
            Ok(g) => out.extend(g.problems().into_iter().map(|(m, h)| ("generate", m, h))),
            Err(e) => out.push(("generate", e, "write `generate` as a table".into())),
        }
    }
    if let Some(Value::Int(d)) = f.get("recovery_window_in_days") {
        if *d != 0 && !(7..=30).contains(d) {
            out.push((
                "recovery_window_in_days",
                format!(
                    "`recovery_window_in_days` is {d}; AWS keeps a deleted secret 7 to 30 days"
                ),
                "choose 7 to 30 days, or 0 to delete without any chance of recovery".into(),
            ));
        }
    }
    out
}

/// A secret as Secrets Manager describes it, from either `ListSecrets` or `DescribeSecret`.
struct Live {
    arn: String,
    name: String,
    description: String,
    kms_key_id: String,
    tags: IndexMap<String, String>,
    version_id: String,
    scheduled_for_deletion: bool,
}

fn current_version(stages: Option<&HashMap<String, Vec<String>>>) -> String {
    stages
        .and_then(|m| {
            m.iter()
                .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
                .map(|(v, _)| v.clone())
        })
        .unwrap_or_default()
}

fn tag_map(tags: &[Tag]) -> IndexMap<String, String> {
    crate::kit::tags::own_tags(
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
    )
}

impl Live {
    fn from_entry(e: &aws_sdk_secretsmanager::types::SecretListEntry) -> Option<Live> {
        Some(Live {
            arn: e.arn()?.to_string(),
            name: e.name().unwrap_or_default().to_string(),
            description: e.description().unwrap_or_default().to_string(),
            kms_key_id: e.kms_key_id().unwrap_or_default().to_string(),
            tags: tag_map(e.tags()),
            version_id: current_version(e.secret_versions_to_stages()),
            scheduled_for_deletion: e.deleted_date().is_some(),
        })
    }

    fn from_describe(
        d: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
    ) -> Option<Live> {
        Some(Live {
            arn: d.arn()?.to_string(),
            name: d.name().unwrap_or_default().to_string(),
            description: d.description().unwrap_or_default().to_string(),
            kms_key_id: d.kms_key_id().unwrap_or_default().to_string(),
            tags: tag_map(d.tags()),
            version_id: current_version(d.version_ids_to_stages()),
            scheduled_for_deletion: d.deleted_date().is_some(),
        })
    }

    fn observed(&self) -> Observed {
        let mut fields = Fields::new();
        fields.insert("name".into(), Value::str(&self.name));
        fields.insert("description".into(), Value::str(&self.description));
        fields.insert("kms_key_id".into(), Value::str(&self.kms_key_id));
        Observed {
            id: self.arn.clone(),
            fields,
            attributes: attributes(&self.arn, &self.name, &self.version_id),
            tags: self.tags.clone(),
        }
    }
}

fn attributes(arn: &str, name: &str, version_id: &str) -> Fields {
    let mut a = Fields::new();
    a.insert("arn".into(), Value::str(arn));
    a.insert("name".into(), Value::str(name));
    a.insert("version_id".into(), Value::str(version_id));
    a
}

/// Every live (not scheduled for deletion) secret tagged with this stack: one
/// `ListSecrets` per 100 secrets, whatever the number of ids wanted.
async fn list_stack_secrets(cx: &Cx) -> Result<Vec<Live>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .secrets
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values(TAG_STACK)
                .build(),
        )
        .filters(
            Filter::builder()
                .key(FilterNameStringType::TagValue)
                .values(&cx.stack)
                .build(),
        )
        .max_results(LIST_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        // The two filters match any tag's key and any tag's value (by prefix, too):
        // only the exact pair makes a secret this stack's.
        out.extend(
            page.secret_list()
                .iter()
                .filter_map(Live::from_entry)
                .filter(|l| l.tags.get(TAG_STACK) == Some(&cx.stack) && !l.scheduled_for_deletion),
        );
    }
    Ok(out)
}

/// Whether the secret is gone or scheduled for deletion, and so takes no new value.
pub(crate) async fn is_gone(cx: &Cx, id: &str) -> Result<bool, ProviderError> {
    Ok(describe(cx, id).await?.is_none())
}

/// One secret by ARN or name; `None` when gone or scheduled for deletion.
async fn describe(cx: &Cx, id: &str) -> Result<Option<Live>, ProviderError> {
    let d = unless_gone(cx.secrets.describe_secret().secret_id(id).send().await)?;
    Ok(d.as_ref().and_then(Live::from_describe))
}

/// The environment variable's value, or an error that says what to do.
fn env_value(address: &str, var: &str) -> Result<Sensitive, ProviderError> {
    Sensitive::from_env(var).ok_or_else(|| {
        ProviderError::InvalidInput(format!(
            "{address}: value_from_env names the environment variable `{var}`, which is not set \
             (or not UTF-8) in this process; export {var} where reconcile apply runs, then apply again"
        ))
    })
}

/// Asks Secrets Manager for a password and shapes it as the settings say.
pub async fn generate(cx: &Cx, address: &str, g: &Generate) -> Result<Sensitive, ProviderError> {
    let out = cx
        .secrets
        .get_random_password()
        .password_length(g.length)
        .set_exclude_characters(g.exclude_characters.clone().filter(|s| !s.is_empty()))
        .set_exclude_punctuation(g.exclude_punctuation)
        .set_exclude_numbers(g.exclude_numbers)
        .set_exclude_uppercase(g.exclude_uppercase)
        .set_exclude_lowercase(g.exclude_lowercase)
        .set_include_space(g.include_space)
        .set_require_each_included_type(g.require_each_included_type)
        .send()
        .await
        .map_err(|e| at(address, "GetRandomPassword", ProviderError::from_sdk(e)))?;
    let password = Sensitive::new(out.random_password().unwrap_or_default());
    if password.expose().is_empty() {
        return Err(ProviderError::Other(format!(
            "{address}: GetRandomPassword answered no password; apply again"
        )));
    }
    Ok(g.secret_string(&password))
}

/// Writes a new AWSCURRENT value; returns its version id.
pub(crate) async fn put_value(
    cx: &Cx,
    address: &str,
    arn: &str,
    value: &Sensitive,
) -> Result<String, ProviderError> {
    let out = cx
        .secrets
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.expose())
        .send()
        .await
        .map_err(|e| at(address, "PutSecretValue", ProviderError::from_sdk(e)))?;
    Ok(out.version_id().unwrap_or_default().to_string())
}

fn sdk_tags(t: &IndexMap<String, String>) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Makes the secret's tags exactly `want` (AWS's own `aws:` tags aside).
async fn sync_tags(
    cx: &Cx,
    address: &str,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    if !stale.is_empty() {
        cx.secrets
            .untag_resource()
            .secret_id(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| at(address, "UntagResource", ProviderError::from_sdk(e)))?;
    }
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !changed.is_empty() {
        cx.secrets
            .tag_resource()
            .secret_id(arn)
            .set_tags(Some(sdk_tags(&changed)))
            .send()
            .await
            .map_err(|e| at(address, "TagResource", ProviderError::from_sdk(e)))?;
    }
    Ok(())
}

/// Sets the description and the KMS key (an empty key is left alone), when given.
async fn update_secret(
    cx: &Cx,
    address: &str,
    arn: &str,
    description: Option<&str>,
    kms: Option<&str>,
) -> Result<(), ProviderError> {
    let kms = kms.filter(|k| !k.is_empty());
    if description.is_none() && kms.is_none() {
        return Ok(());
    }
    cx.secrets
        .update_secret()
        .secret_id(arn)
        .set_description(description.map(str::to_string))
        .set_kms_key_id(kms.map(str::to_string))
        .send()
        .await
        .map_err(|e| at(address, "UpdateSecret", ProviderError::from_sdk(e)))?;
    Ok(())
}

/// The value a create must store, read or generated before anything exists so
/// that a missing variable leaves nothing half-made.
async fn value_for_create(
    cx: &Cx,
    address: &str,
    source: &Source,
) -> Result<Option<Sensitive>, ProviderError> {
    match source {
        Source::Env(var) => env_value(address, var).map(Some),
        Source::Generate(g) => generate(cx, address, g).await.map(Some),
        Source::Unmanaged => Ok(None),
    }
}

impl Secret {
    /// A create found the name taken. A secret pending deletion is restored; one
    /// this stack already made for this address (an interrupted create) is
    /// adopted; anything else is someone else's and is left alone.
    async fn take_over_existing(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
        source: &Source,
        value: Option<&Sensitive>,
        original: ProviderError,
    ) -> Result<Observed, ProviderError> {
        let Some(live) = describe(cx, name).await? else {
            return Err(at(want.address, "CreateSecret", original));
        };
        if live.scheduled_for_deletion {
            tracing::info!(address = want.address, arn = %live.arn, "restoring a secret pending deletion instead of creating it");
            cx.secrets
                .restore_secret()
                .secret_id(&live.arn)
                .send()
                .await
                .map_err(|e| at(want.address, "RestoreSecret", ProviderError::from_sdk(e)))?;
        } else {
            adopt::take_over(cx, want, "a secret", name, Some(live.observed()), original)?;
        }
        let f = want.fields;
        let description = str_of(f, "description").filter(|d| *d != live.description);
        let kms = str_of(f, "kms_key_id").filter(|k| *k != live.kms_key_id);
        update_secret(cx, want.address, &live.arn, description, kms).await?;
        sync_tags(cx, want.address, &live.arn, &live.tags, want.tags).await?;
        let mut version_id = live.version_id.clone();
        match (source, value) {
            // The variable is the truth: whatever the old secret held is replaced.
            (Source::Env(_), Some(v)) => {
                version_id = put_value(cx, want.address, &live.arn, v).await?;
            }
            // A generated value is made once: a restored one is kept, and only a
            // secret that never had a value gets the one generated for this create.
            (Source::Generate(_), Some(v)) if live.version_id.is_empty() => {
                version_id = put_value(cx, want.address, &live.arn, v).await?;
            }
            _ => {}
        }
        Ok(Observed {
            id: live.arn.clone(),
            fields: created_fields(want.fields, name),
            attributes: attributes(&live.arn, &live.name, &version_id),
            tags: want.tags.clone(),
        })
    }
}

/// What a create or update reports as the live fields: the desired ones, which
/// it made true (the value source included, as the verdict an observe would give).
fn created_fields(f: &Fields, name: &str) -> Fields {
    let mut fields = f.clone();
    fields.insert("name".into(), Value::str(name));
    fields
}

/// The verdict on a value compared with its variable: the variable's name when
/// equal, a sentence naming it (never the value) when not.
pub fn verdict(var: &str, live: Option<&Sensitive>, want: &Sensitive) -> Value {
    match live {
        Some(l) if l.same_as(want) => Value::str(var),
        Some(_) => Value::str(format!("(live value differs from ${var})")),
        None => Value::str(format!("(no live value; expected ${var})")),
    }
}

/// Live values of many secrets by ARN: one `BatchGetSecretValue` per 20 ids.
/// An id whose secret has no value maps to `None`.
pub(crate) async fn batch_values(
    cx: &Cx,
    ids: &[String],
) -> Result<HashMap<String, Option<Sensitive>>, ProviderError> {
    let mut out: HashMap<String, Option<Sensitive>> = HashMap::new();
    for chunk in ids.chunks(BATCH_GET) {
        let mut next: Option<String> = None;
        loop {
            let res = cx
                .secrets
                .batch_get_secret_value()
                .set_secret_id_list(Some(chunk.to_vec()))
                .set_next_token(next.clone())
                .send()
                .await;
            let page = match res {
                Ok(p) => p,
                Err(e) => match ProviderError::from_sdk(e) {
                    // One secret without a value can fail the whole batch (moto
                    // does this); read that chunk one by one instead.
                    ProviderError::NotFound(_) => {
                        for id in chunk {
                            out.insert(id.clone(), single_value(cx, id).await?);
                        }
                        break;
                    }
                    other => return Err(other),
                },
            };
            for v in page.secret_values() {
                let value = v.secret_string().map(Sensitive::new);
                let arn = v.arn().unwrap_or_default();
                if let Some(id) = chunk
                    .iter()
                    .find(|id| *id == arn || Some(id.as_str()) == v.name())
                {
                    out.insert(id.clone(), value);
                }
            }
            for e in page.errors() {
                let id = e.secret_id().unwrap_or_default();
                match e.error_code() {
                    Some("ResourceNotFoundException") => {
                        out.insert(id.to_string(), None);
                    }
                    code => {
                        return Err(ProviderError::Aws {
                            code: code.unwrap_or("Unknown").to_string(),
                            message: format!(
                                "reading the value of {id}: {}; \
                                 reconcile needs secretsmanager:GetSecretValue (and kms:Decrypt) on it",
                                e.message().unwrap_or_default()
                            ),
                        })
                    }
                }
            }
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) async fn single_value(cx: &Cx, id: &str) -> Result<Option<Sensitive>, ProviderError> {
    let v = unless_gone(cx.secrets.get_secret_value().secret_id(id).send().await)?;
    Ok(v.and_then(|v| v.secret_string().map(Sensitive::new)))
}

#[async_trait]
impl Provider for Secret {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for live in list_stack_secrets(cx).await? {
            if let Some(id) = ids.iter().find(|id| **id == live.arn || **id == live.name) {
                out.insert(id.clone(), live.observed());
            }
        }
        // Not tagged with this stack (imported, or re-tagged by hand): one by one.
        let missing: Vec<&String> = ids.iter().filter(|id| !out.contains_key(*id)).collect();
        for id in missing {
            if let Some(live) = describe(cx, id).await? {
                if !live.scheduled_for_deletion {
                    out.insert(id.clone(), live.observed());
                }
            }
        }
        Ok(out)
    }

    async fn observe_against_desired(
        &self,
        cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        let mut compare: Vec<(usize, String, Sensitive)> = Vec::new();
        for (i, (r, live)) in items.iter_mut().enumerate() {
            let Some(var) = str_of(&r.fields, "value_from_env") else {
                continue;
            };
            match Sensitive::from_env(var) {
                Some(want) => compare.push((i, var.to_string(), want)),
                None => {
                    // Nothing to compare with: say so, and do not invent a change.
                    tracing::warn!(
                        address = %r.address,
                        variable = var,
                        "value_from_env variable is not set; the live value is not compared (apply would fail until it is set)"
                    );
                    live.fields.insert("value_from_env".into(), Value::str(var));
                }
            }
        }
        if compare.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<String> = compare
            .iter()
            .map(|(i, ..)| items[*i].1.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let values = batch_values(cx, &ids).await?;
        for (i, var, want) in &compare {
            let live = &mut items[*i].1;
            let have = values.get(&live.id).and_then(Option::as_ref);
            live.fields
                .insert("value_from_env".into(), verdict(var, have, want));
        }
        Ok(())
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(list_stack_secrets(cx)
            .await?
            .into_iter()
            .filter_map(|l| stack_address(cx, &l.tags).map(|a| (a, l.observed())))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect())
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{}: `name` must be a known string", want.address))
        })?;
        let source = Source::of(f)
            .map_err(|e| ProviderError::InvalidInput(format!("{}: {e}", want.address)))?;
        let value = value_for_create(cx, want.address, &source).await?;
        let mut req = cx
            .secrets
            .create_secret()
            .name(name)
            .set_description(str_of(f, "description").map(str::to_string))
            .set_kms_key_id(
                str_of(f, "kms_key_id")
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
            )
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(sdk_tags(want.tags)));
        if let Some(v) = &value {
            req = req.secret_string(v.expose());
            // The version id doubles as an idempotency token: a retried request
            // with the same value returns the version made the first time.
            if (32..=64).contains(&want.token.len()) {
                req = req.client_request_token(want.token);
            }
        }
        match req.send().await {
            Ok(out) => {
                let arn = out
                    .arn()
                    .ok_or_else(|| {
                        ProviderError::Other(format!(
                            "{}: CreateSecret answered no ARN; run plan to see whether it exists",
                            want.address
                        ))
                    })?
                    .to_string();
                Ok(Observed {
                    attributes: attributes(
                        &arn,
                        out.name().unwrap_or(name),
                        out.version_id().unwrap_or_default(),
                    ),
                    id: arn,
                    fields: created_fields(f, name),
                    tags: want.tags.clone(),
                })
            }
            Err(e) => {
                let e = ProviderError::from_sdk(e);
                // AWS says InvalidRequestException for a name pending deletion,
                // ResourceExistsException for a live one (moto: for both).
                if matches!(
                    e.code(),
                    Some("ResourceExistsException") | Some("InvalidRequestException")
                ) {
                    self.take_over_existing(cx, want, name, &source, value.as_ref(), e)
                        .await
                } else {
                    Err(at(want.address, "CreateSecret", e))
                }
            }
        }
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let arn = live.id.as_str();
        let source = Source::of(f)
            .map_err(|e| ProviderError::InvalidInput(format!("{}: {e}", want.address)))?;
        // Read the variable before any call, so a missing one changes nothing.
        let env = match &source {
            Source::Env(var) if changes_field(changes, "value_from_env") => {
                Some(env_value(want.address, var)?)
            }
            _ => None,
        };
        let mut version_id = live
            .attributes
            .get("version_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let ch = |k: &str| changes_field(changes, k);
        let description = str_of(f, "description").filter(|_| ch("description"));
        let kms = str_of(f, "kms_key_id").filter(|_| ch("kms_key_id"));
        update_secret(cx, want.address, arn, description, kms).await?;
        if changes_field(changes, "tags") {
            sync_tags(cx, want.address, arn, &live.tags, want.tags).await?;
        }
        if let Some(v) = &env {
            version_id = put_value(cx, want.address, arn, v).await?;
        } else if let Source::Generate(g) = &source {
            // Generated values are made once. Only a secret that has none yet
            // (it was a person's to fill, and now asks to be generated) gets one.
            if changes_field(changes, "generate") && version_id.is_empty() {
                let v = generate(cx, want.address, g).await?;
                version_id = put_value(cx, want.address, arn, &v).await?;
            }
        }

        let mut fields = live.fields.clone();
        fields.extend(f.clone());
        let name = live
            .attributes
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| str_of(f, "name"))
            .unwrap_or_default()
            .to_string();
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: attributes(arn, &name, &version_id),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Deletes with the recovery window last applied (30 days for a copy state
    /// never recorded); 0 deletes at once. Gone or already scheduled is success.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let days = applied
            .and_then(|f| f.get("recovery_window_in_days"))
            .and_then(Value::as_int)
            .unwrap_or(DEFAULT_RECOVERY_DAYS);
        let mut req = cx.secrets.delete_secret().secret_id(id);
        req = if days == 0 {
            req.force_delete_without_recovery(true)
        } else {
            req.recovery_window_in_days(days.clamp(7, 30))
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => match ProviderError::from_sdk(e) {
                ProviderError::NotFound(_) => Ok(()),
                e if e.code() == Some("InvalidRequestException") => {
                    // Already scheduled for deletion is what was asked; anything else is not.
                    match describe(cx, id).await? {
                        None => Ok(()),
                        Some(l) if l.scheduled_for_deletion => Ok(()),
                        Some(_) => Err(ProviderError::Aws {
                            code: "InvalidRequestException".into(),
                            message: format!("DeleteSecret {id}: {e}"),
                        }),
                    }
                }
                other => Err(ProviderError::Aws {
                    code: other.code().unwrap_or("Error").to_string(),
                    message: format!(
                        "DeleteSecret {id}: {other}; check the secret's resource policy and replicas, then apply again"
                    ),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn template_gen() -> Generate {
        Generate::from_value(&Value::Map(map(&[
            ("length", Value::Int(24)),
            ("exclude_punctuation", Value::Bool(true)),
            (
                "template",
                Value::Map(map(&[
                    ("username", Value::str("keycloak")),
                    ("dbname", Value::str("keycloak")),
                ])),
            ),
            ("key", Value::str("password")),
        ])))
        .unwrap()
    }

    #[test]
    fn template_gets_the_password_under_its_key() {
        let g = template_gen();
        assert_eq!(g.length, 24);
        assert_eq!(g.exclude_punctuation, Some(true));
        let s = g.secret_string(&Sensitive::new("pw-canary-123"));
        let v: serde_json::Value = serde_json::from_str(s.expose()).unwrap();
        assert_eq!(v["username"], "keycloak");
        assert_eq!(v["dbname"], "keycloak");
        assert_eq!(v["password"], "pw-canary-123");
        // Template order is kept, the password last.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["username", "dbname", "password"]);
        // The result is itself a Sensitive: printing it shows nothing.
        assert!(!format!("{s:?}").contains("canary"));
    }

    #[test]
    fn without_a_template_the_password_is_stored_bare() {
        let g = Generate::from_value(&Value::Map(Fields::new())).unwrap();
        assert_eq!(g.length, 32, "the default length");
        let s = g.secret_string(&Sensitive::new("bare-canary"));
        assert_eq!(s.expose(), "bare-canary");
    }

    #[test]
    fn template_key_overrides_a_template_entry_and_keeps_json_special_characters() {
        let mut g = template_gen();
        g.template
            .as_mut()
            .unwrap()
            .insert("password".into(), Value::str("placeholder"));
        let s = g.secret_string(&Sensitive::new(r#"a"b\c"#));
        let v: serde_json::Value = serde_json::from_str(s.expose()).unwrap();
        assert_eq!(v["password"], r#"a"b\c"#);
    }

    #[test]
    fn validation() {
        let ok = map(&[
            ("name", Value::str("app/db")),
            ("generate", Value::Map(map(&[("length", Value::Int(32))]))),
            ("recovery_window_in_days", Value::Int(30)),
        ]);
        assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));

        let both = map(&[
            ("generate", Value::Map(Fields::new())),
            ("value_from_env", Value::str("X")),
        ]);
        let p = problems(&both);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "value_from_env");
        assert!(p[0].1.contains("both"), "{p:?}");

        let template_only = map(&[(
            "generate",
            Value::Map(map(&[(
                "template",
                Value::Map(map(&[("username", Value::str("u"))])),
            )])),
        )]);
        let p = problems(&template_only);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("without `generate.key`"), "{p:?}");

        let key_only = map(&[(
            "generate",
            Value::Map(map(&[("key", Value::str("password"))])),
        )]);
        let p = problems(&key_only);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("without `generate.template`"), "{p:?}");

        for (days, good) in [
            (0, true),
            (7, true),
            (30, true),
            (1, false),
            (6, false),
            (31, false),
            (-1, false),
        ] {
            let f = map(&[("recovery_window_in_days", Value::Int(days))]);
            assert_eq!(
                problems(&f).is_empty(),
                good,
                "{days} days: {:?}",
                problems(&f)
            );
        }

        // The length's bounds are the schema's, checked where the TOML says it.
        let length = GENERATE_FIELDS.iter().find(|f| f.name == "length");
        assert_eq!(length.and_then(|f| f.range), Some((1, 4096)));

        let nothing_left = map(&[(
            "generate",
            Value::Map(map(&[
                ("exclude_punctuation", Value::Bool(true)),
                ("exclude_numbers", Value::Bool(true)),
                ("exclude_uppercase", Value::Bool(true)),
                ("exclude_lowercase", Value::Bool(true)),
            ])),
        )]);
        assert_eq!(problems(&nothing_left).len(), 1);
    }

    #[test]
    fn sources() {
        assert_eq!(Source::of(&Fields::new()).unwrap(), Source::Unmanaged);
        assert_eq!(
            Source::of(&map(&[("value_from_env", Value::str("STRIPE_KEY"))])).unwrap(),
            Source::Env("STRIPE_KEY".into())
        );
        assert!(matches!(
            Source::of(&map(&[("generate", Value::Map(Fields::new()))])).unwrap(),
            Source::Generate(_)
        ));
        assert!(Source::of(&map(&[
            ("generate", Value::Map(Fields::new())),
            ("value_from_env", Value::str("X"))
        ]))
        .is_err());
    }

    #[test]
    fn names() {
        assert!(check_secret_name("proxy-smart/keycloak-db").is_ok());
        assert!(check_secret_name("a+b=c.d@e_f").is_ok());
        assert!(check_secret_name("").is_err());
        assert!(check_secret_name("has space").is_err());
        assert!(check_secret_name(&"x".repeat(513)).is_err());
        assert!(check_env_name("STRIPE_SECRET_KEY").is_ok());
        assert!(check_env_name("_x1").is_ok());
        assert!(check_env_name("1X").is_err());
        assert!(check_env_name("A-B").is_err());
        assert!(check_env_name("").is_err());
    }

    #[test]
    fn verdicts_name_the_variable_never_the_value() {
        let want = Sensitive::new("canary-want");
        assert_eq!(
            verdict("VAR", Some(&Sensitive::new("canary-want")), &want),
            Value::str("VAR")
        );
        let differs = verdict("VAR", Some(&Sensitive::new("canary-live")), &want);
        assert_eq!(differs, Value::str("(live value differs from $VAR)"));
        let none = verdict("VAR", None, &want);
        for v in [differs, none] {
            assert!(!v.to_string().contains("canary"), "{v}");
        }
    }

    #[test]
    fn the_current_version_is_the_awscurrent_one() {
        let mut m = HashMap::new();
        m.insert("v1".to_string(), vec!["AWSPREVIOUS".to_string()]);
        m.insert("v2".to_string(), vec!["AWSCURRENT".to_string()]);
        assert_eq!(current_version(Some(&m)), "v2");
        assert_eq!(current_version(None), "");
    }

    #[test]
    fn aws_tags_are_not_compared() {
        let tags = vec![
            Tag::builder().key("b").value("2").build(),
            Tag::builder()
                .key("aws:secretsmanager:owningService")
                .value("rds")
                .build(),
            Tag::builder().key("a").value("1").build(),
        ];
        let m = tag_map(&tags);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
