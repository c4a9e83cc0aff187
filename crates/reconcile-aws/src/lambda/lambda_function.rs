//! `lambda_function`: a Lambda function whose code reconcile packs from a
//! local directory (or takes as a zip file), with its configuration and tags.
//!
//! Code is compared by content: the package's SHA-256 against the
//! `CodeSha256` Lambda reports, computed while planning, so an unchanged build
//! is no change and a changed one is an update of the code alone
//! (UpdateFunctionCode), apart from configuration changes
//! (UpdateFunctionConfiguration). The environment is plain configuration that
//! anyone allowed to read the function sees: `validate` refuses secrets in it.

use super::package::package;
use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{changes_field, fields_of, i32_of, str_of};
use crate::kit::tags::{own_tags, stack_resources_of_type};
use crate::kit::wait::{wait, Backoff, Progress, Wait};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Reference, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use reconcile_core::sensitive::Sensitive;
use std::collections::HashMap;
use std::time::Duration;

pub struct LambdaFunction;

pub const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

/// The fields UpdateFunctionConfiguration sets.
const CONFIGURATION: &[&str] = &[
    "runtime",
    "handler",
    "role",
    "description",
    "memory_size",
    "timeout",
    "environment",
];

/// Attributes of a declared secret that name it without holding its value.
const SECRET_NAMES: &[&str] = &["arn", "id", "name"];

pub static SCHEMA: Schema = Schema {
    kind: "lambda_function",
    doc: "A Lambda function (zip package) with its code, configuration and tags. `code` is a \
          directory, which reconcile packs into a deterministic zip (entries sorted, timestamps \
          fixed at 1980-01-01, mode 0644 or 0755 for executables), or a `.zip` file sent as it \
          is; the path is relative to the TOML file. While planning, the package's SHA-256 is \
          compared with the `CodeSha256` Lambda reports: the same code built again is no \
          change, and a changed byte plans an update of `code` alone, made with \
          UpdateFunctionCode; configuration fields are updated with \
          UpdateFunctionConfiguration, tags with TagResource/UntagResource, and each update \
          waits for `LastUpdateStatus` to leave InProgress. `environment` is plain \
          configuration, readable by anyone allowed lambda:GetFunctionConfiguration: \
          `validate` refuses a value that references a declared `secret` other than by its \
          `arn` or `name`, and a value that holds what a `value_from_env` secret's variable \
          holds (compared in memory, never printed); pass the secret's ARN and read it at run \
          time. Lambda writes to the log group `/aws/lambda/FUNCTION_NAME`, creating it \
          without retention if it does not exist: declare it as a `log_group` with that name \
          and `depends_on` it from the function, as Terraform users do with \
          `aws_cloudwatch_log_group`, so its retention is managed and destroy removes it. \
          A create waits for the function to be Active, and retries for up to two minutes \
          while IAM has not yet propagated a new role. Observing costs one GetFunction per \
          function (configuration and tags in one answer). The emulator (moto 5.2.5) needs \
          the role to exist, cannot invoke without Docker, ignores a change of `architecture` \
          (UpdateFunctionCode does not store it) and is Active at once.",
    fields: &[
        Field::new(
            "function_name",
            Ty::Pattern(check_name),
            "The function name: 1 to 64 letters, digits, hyphens and underscores. Changing it \
             replaces the function.",
        )
        .required()
        .force_new(),
        Field::new(
            "runtime",
            Ty::Str,
            "The runtime, such as \"nodejs22.x\", \"python3.13\" or \"provided.al2023\". \
             Updated in place.",
        )
        .required(),
        Field::new(
            "handler",
            Ty::Str,
            "The entry point, such as \"index.handler\" (file index, export handler). Updated \
             in place.",
        )
        .required(),
        Field::new(
            "role",
            Ty::Str,
            "The execution role's ARN, `${iam_role.NAME.arn}`: a role that trusts \
             lambda.amazonaws.com. Updated in place.",
        )
        .required(),
        Field::new(
            "description",
            Ty::Str,
            "What the function does. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "memory_size",
            Ty::Int,
            "Memory in MiB, 128 to 10240 (CPU grows with it). Updated in place.",
        )
        .range(128, 10_240)
        .default(Default::Int(128)),
        Field::new(
            "timeout",
            Ty::Int,
            "Seconds an invocation may run, 1 to 900. Updated in place.",
        )
        .range(1, 900)
        .default(Default::Int(3)),
        Field::new(
            "architecture",
            Ty::Enum(ARCHITECTURES),
            "x86_64 or arm64. Updated in place, with the code (UpdateFunctionCode).",
        )
        .default(Default::Str("x86_64")),
        Field::new(
            "environment",
            Ty::Map(&Ty::Str),
            "Environment variables, plain strings: `{ BACKUP_BUCKET = \"${s3_bucket.b.name}\" }`. \
             No secrets: pass a secret's ARN (`${secret.NAME.arn}`) and read it at run time. \
             Updated in place.",
        )
        .default(Default::Table),
        Field::new(
            "code",
            Ty::Path,
            "The code: a directory packed into a zip, or a `.zip` file, relative to the TOML \
             file. Compared by SHA-256 with the deployed code; updated in place.",
        )
        .required(),
    ],
    attributes: &[
        ("id", "The function name, which is its id."),
        (
            "arn",
            "The function's ARN: what EventBridge targets and SNS subscriptions take.",
        ),
        ("function_name", "The function name."),
        (
            "invoke_arn",
            "The ARN API Gateway integrations call the function by.",
        ),
        (
            "code_sha256",
            "Base64 of the SHA-256 of the deployed package, as Lambda reports it.",
        ),
    ],
    taggable: true,
};

/// Function names: 1 to 64 of letters, digits, `-` and `_`.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("\"{s}\": a function name has 1 to 64 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits, hyphens and underscores only"
        ));
    }
    Ok(())
}

const READ_AT_RUN_TIME: &str = "pass the secret's ARN instead (`${secret.NAME.arn}`) and read \
     the value at run time from Secrets Manager (GetSecretValue, allowed by the function's role)";

/// Secrets in a function's environment: references to a declared secret's
/// value, and literal values that hold what a `value_from_env` secret's
/// variable holds (compared in memory through [`Sensitive`], never shown).
pub fn env_problems(stack: &Stack, f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let Some(env) = f.get("environment").and_then(Value::as_map) else {
        return out;
    };
    // The values a declared secret reads from the environment right now.
    let mut secret_values: Vec<(&str, &str, Sensitive)> = Vec::new();
    for s in stack.resources.values().filter(|r| r.kind == "secret") {
        if let Some(var) = str_of(&s.fields, "value_from_env") {
            if let Some(v) = Sensitive::from_env(var).filter(|v| !v.expose().is_empty()) {
                secret_values.push((&s.address, var, v));
            }
        }
    }
    for (key, v) in env {
        for rf in v.references() {
            if let Reference::Resource { kind, name, attr } = &rf {
                if kind == "secret" && !SECRET_NAMES.contains(&attr.as_str()) {
                    out.push((
                        "environment",
                        format!(
                            "environment variable `{key}` takes `{rf}` of the declared secret \
                             `secret.{name}`: a function's environment is plain configuration, \
                             shown to anyone who may read the function"
                        ),
                        READ_AT_RUN_TIME.into(),
                    ));
                }
            }
        }
        let Some(text) = v.as_str() else { continue };
        for (address, var, secret) in &secret_values {
            if holds(text, secret) {
                out.push((
                    "environment",
                    format!(
                        "environment variable `{key}` holds the value of the declared secret \
                         `{address}` (read from `{var}`): a function's environment is plain \
                         configuration, shown to anyone who may read the function"
                    ),
                    READ_AT_RUN_TIME.into(),
                ));
            }
        }
    }
    out
}

/// Whether `text` holds the secret: equal to it, or containing it when it is
/// long enough that containing it is no accident.
fn holds(text: &str, secret: &Sensitive) -> bool {
    let candidate = Sensitive::new(text);
    candidate.same_as(secret) || (secret.expose().len() >= 8 && text.contains(secret.expose()))
}

/// What GetFunction answers, as fields (`code` is judged against the declared one apart).
pub fn fields_from(c: &FunctionConfiguration) -> Fields {
    let mut env: IndexMap<String, Value> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), Value::str(v))).collect())
        .unwrap_or_default();
    env.sort_keys();
    fields_of([
        (
            "function_name",
            Value::str(c.function_name().unwrap_or_default()),
        ),
        (
            "runtime",
            Value::str(c.runtime().map(|r| r.as_str()).unwrap_or_default()),
        ),
        ("handler", Value::str(c.handler().unwrap_or_default())),
        ("role", Value::str(c.role().unwrap_or_default())),
        (
            "description",
            Value::str(c.description().unwrap_or_default()),
        ),
        (
            "memory_size",
            Value::Int(i64::from(c.memory_size().unwrap_or(128))),
        ),
        ("timeout", Value::Int(i64::from(c.timeout().unwrap_or(3)))),
        (
            "architecture",
            Value::str(
                c.architectures()
                    .first()
                    .map(|a| a.as_str())
                    .unwrap_or("x86_64"),
            ),
        ),
        ("environment", Value::Map(env)),
    ])
}

fn attributes(c: &FunctionConfiguration, region: &str) -> Fields {
    let arn = c.function_arn().unwrap_or_default();
    let name = c.function_name().unwrap_or_default();
    fields_of([
        ("id", Value::str(name)),
        ("arn", Value::str(arn)),
        ("function_name", Value::str(name)),
        (
            "invoke_arn",
            Value::str(format!(
                "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            )),
        ),
        (
            "code_sha256",
            Value::str(c.code_sha256().unwrap_or_default()),
        ),
    ])
}

/// One function by name, tags included; `None` when it is gone.
async fn read(cx: &Cx, name: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(out) = unless_gone(cx.lambda.get_function().function_name(name).send().await)? else {
        return Ok(None);
    };
    let Some(c) = out.configuration() else {
        return Ok(None);
    };
    let tags = own_tags(
        out.tags()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    Ok(Some(Observed {
        id: c.function_name().unwrap_or(name).to_string(),
        fields: fields_from(c),
        attributes: attributes(c, &cx.region),
        tags,
    }))
}

fn env_of(f: &Fields) -> HashMap<String, String> {
    f.get("environment")
        .and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The package of the declared code, or why there is none.
fn code_of(a: &str, f: &Fields) -> Result<super::package::Package, ProviderError> {
    let path = str_of(f, "code")
        .ok_or_else(|| ProviderError::InvalidInput(format!("{a}: `code` must be a path")))?;
    package(path).map_err(|e| ProviderError::InvalidInput(format!("{a}: {e}")))
}

/// What the live `code` field reads when it is not the declared code.
fn other_code(live_sha: &str) -> Value {
    Value::str(format!("(deployed code, CodeSha256 {live_sha})"))
}

/// Whether a failed create is IAM not yet letting Lambda assume a new role.
fn role_not_ready(e: &ProviderError) -> bool {
    let text = e.to_string();
    text.contains("cannot be assumed") || text.contains("role defined for the function")
}

const POLL: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(5),
};

/// Waits until the function is Active and no update is in progress: until
/// then Lambda refuses the next change with ResourceConflictException.
pub async fn settled(
    cx: &Cx,
    a: &str,
    name: &str,
    phase: &'static str,
) -> Result<(), ProviderError> {
    let w = Wait {
        address: a,
        phase,
        timeout: Duration::from_secs(600),
        backoff: POLL,
        status: &cx.status,
        when_failed: "look at the function's state reason in the Lambda console, fix the cause, \
                      then apply again",
        when_timed_out: "the function stays as it is",
    };
    wait(&w, || async move {
        let c = cx
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| at(a, "GetFunctionConfiguration", e.into()))?;
        Ok(progress(
            c.state(),
            c.last_update_status(),
            c.state_reason().or(c.last_update_status_reason()),
        ))
    })
    .await
}

/// Where a function is, from its state and last update status.
pub fn progress(
    state: Option<&State>,
    update: Option<&LastUpdateStatus>,
    reason: Option<&str>,
) -> Progress {
    let why = || reason.unwrap_or("no reason given").to_string();
    match (state, update) {
        (Some(State::Failed), _) => Progress::Failed(format!("the function failed: {}", why())),
        (_, Some(LastUpdateStatus::Failed)) => {
            Progress::Failed(format!("the last update failed: {}", why()))
        }
        (Some(State::Pending), _) => Progress::Pending("pending".into()),
        (_, Some(LastUpdateStatus::InProgress)) => Progress::Pending("updating".into()),
        _ => Progress::Done("active".into()),
    }
}

impl LambdaFunction {
    async fn create_function(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let code = code_of(a, f)?;
        let mut tries = 0;
        loop {
            let sent = cx
                .lambda
                .create_function()
                .function_name(name)
                .runtime(Runtime::from(str_of(f, "runtime").unwrap_or_default()))
                .handler(str_of(f, "handler").unwrap_or_default())
                .role(str_of(f, "role").unwrap_or_default())
                .description(str_of(f, "description").unwrap_or_default())
                .set_memory_size(i32_of(f, "memory_size"))
                .set_timeout(i32_of(f, "timeout"))
                .architectures(Architecture::from(
                    str_of(f, "architecture").unwrap_or("x86_64"),
                ))
                .environment(
                    Environment::builder()
                        .set_variables(Some(env_of(f)))
                        .build(),
                )
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(code.zip.clone()))
                        .build(),
                )
                // Tagged in the same call, so an interrupted create is found again by its tags.
                .set_tags(Some(want.tags.clone().into_iter().collect()))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = ProviderError::from(e);
                    // IAM takes a few seconds to let Lambda assume a role just made.
                    if role_not_ready(&e) && tries < 24 {
                        tries += 1;
                        cx.status.report(a, "waiting for IAM to propagate the role");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        continue;
                    }
                    return Err(at(a, "CreateFunction", e));
                }
            }
        }
    }

    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let name = live.id.as_str();
        if CONFIGURATION.iter().any(|k| changes_field(changes, k)) {
            cx.lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(str_of(f, "runtime").unwrap_or_default()))
                .handler(str_of(f, "handler").unwrap_or_default())
                .role(str_of(f, "role").unwrap_or_default())
                .description(str_of(f, "description").unwrap_or_default())
                .set_memory_size(i32_of(f, "memory_size"))
                .set_timeout(i32_of(f, "timeout"))
                .environment(
                    Environment::builder()
                        .set_variables(Some(env_of(f)))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| at(a, "UpdateFunctionConfiguration", e.into()))?;
            settled(cx, a, name, "update").await?;
        }
        if changes_field(changes, "code") || changes_field(changes, "architecture") {
            let code = code_of(a, f)?;
            cx.lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(code.zip))
                .architectures(Architecture::from(
                    str_of(f, "architecture").unwrap_or("x86_64"),
                ))
                .send()
                .await
                .map_err(|e| at(a, "UpdateFunctionCode", e.into()))?;
            settled(cx, a, name, "update").await?;
        }
        if changes_field(changes, "tags") {
            let arn = str_of(&live.attributes, "arn").unwrap_or_default();
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.lambda.untag_resource().resource(arn),
                tag: cx.lambda.tag_resource().resource(arn),
                tags: |s: &IndexMap<String, String>| Ok::<_, ProviderError>(s.clone().into_iter().collect()),
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for LambdaFunction {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, env_problems(stack, &r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    /// Packs each declared function's code and compares its hash with the
    /// deployed `CodeSha256`: equal, `code` reads as declared; else as the
    /// deployed package, which plans an update of the code.
    async fn observe_against_desired(
        &self,
        _cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        for (r, o) in items.iter_mut() {
            let Some(want) = r.fields.get("code") else {
                continue;
            };
            let built = code_of(&r.address, &r.fields)?;
            let live = str_of(&o.attributes, "code_sha256").unwrap_or_default();
            let seen = if built.sha256 == live {
                want.clone()
            } else {
                other_code(live)
            };
            o.fields.insert("code".into(), seen);
        }
        Ok(())
    }

    /// One Tagging API listing of the stack's functions, then a GetFunction each.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads = stack_resources_of_type(cx, "lambda:function")
            .await?
            .into_iter()
            .filter(|(_, tags)| {
                crate::kit::tags::stack_address(cx, tags)
                    .is_some_and(|a| addresses.is_empty() || addresses.contains(&a))
            })
            .map(|(arn, _)| async move { read(cx, super::function_name_of(&arn)).await })
            .collect();
        Ok(crate::kit::tags::tagged(cx, addresses, each(reads).await?))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        let name = str_of(f, "function_name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `function_name` must be a known string"))
        })?;
        if let Some(mut found) = read(cx, name).await? {
            let refused = ProviderError::InvalidInput(format!(
                "{a}: a function named `{name}` already exists"
            ));
            let built = code_of(a, f)?;
            let live_sha = str_of(&found.attributes, "code_sha256").unwrap_or_default();
            let code = if built.sha256 == live_sha {
                f.get("code").cloned().unwrap_or(Value::Unknown)
            } else {
                other_code(live_sha)
            };
            found.fields.insert("code".into(), code);
            let live = take_over(cx, want, "a Lambda function", name, Some(found), refused)?;
            let changes = changes_to(self, want, &live);
            return self.update(cx, &live, want, &changes).await;
        }
        self.create_function(cx, want, name).await?;
        settled(cx, a, name, "create").await?;
        let live = read(cx, name).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the function `{name}` is not found right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            id: live.id,
            fields: f.clone(),
            attributes: live.attributes,
            tags: want.tags.clone(),
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.sync(cx, live, want, changes).await?;
        // The code hash changed with the code: read it back for references.
        let attributes = match read(cx, &live.id).await? {
            Some(o) => o.attributes,
            None => live.attributes.clone(),
        };
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes,
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        gone_is_done(cx.lambda.delete_function().function_name(id).send().await).map_err(|e| {
            at(
                &format!("lambda_function {id} (stack {})", cx.stack),
                "DeleteFunction",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{resource, stack};

    fn function(env: &[(&str, &str)]) -> Resource {
        let env: IndexMap<String, Value> = env
            .iter()
            .map(|(k, v)| (k.to_string(), Value::str(*v)))
            .collect();
        resource(
            "lambda_function.f",
            &[
                ("function_name", Value::str("f")),
                ("environment", Value::Map(env)),
            ],
        )
    }

    #[test]
    fn a_secret_in_the_environment_is_refused_its_arn_is_not() {
        let secret = resource(
            "secret.api",
            &[
                ("name", Value::str("api")),
                (
                    "value_from_env",
                    Value::str("RECONCILE_TEST_LAMBDA_API_KEY"),
                ),
            ],
        );
        std::env::set_var("RECONCILE_TEST_LAMBDA_API_KEY", "sk_live_0123456789");
        let ok = function(&[
            ("API_KEY_ARN", "${secret.api.arn}"),
            ("NAME", "${secret.api.name}"),
            ("PLAIN", "hello"),
        ]);
        let s = stack(vec![secret.clone(), ok.clone()]);
        assert!(env_problems(&s, &ok.fields).is_empty());
        let bad = function(&[
            ("VERSION", "${secret.api.version_id}"),
            ("KEY", "Bearer sk_live_0123456789"),
        ]);
        let s = stack(vec![secret, bad.clone()]);
        let d = LambdaFunction.validate(&s, &bad);
        assert_eq!(d.len(), 2, "{d:?}");
        let text = format!("{d:?}");
        assert!(text.contains("secret.api"), "{text}");
        assert!(text.contains("RECONCILE_TEST_LAMBDA_API_KEY"), "{text}");
        assert!(!text.contains("sk_live"), "the value leaked: {text}");
        assert!(
            d.iter()
                .all(|x| x.pos.as_ref().is_some_and(|p| p.line == 3)),
            "at the environment line: {text}"
        );
    }

    #[test]
    fn progress_follows_state_and_last_update() {
        assert!(matches!(
            progress(Some(&State::Pending), None, None),
            Progress::Pending(_)
        ));
        assert!(matches!(
            progress(
                Some(&State::Active),
                Some(&LastUpdateStatus::InProgress),
                None
            ),
            Progress::Pending(_)
        ));
        assert!(matches!(
            progress(
                Some(&State::Active),
                Some(&LastUpdateStatus::Failed),
                Some("bad zip")
            ),
            Progress::Failed(w) if w.contains("bad zip")
        ));
        assert!(matches!(
            progress(
                Some(&State::Active),
                Some(&LastUpdateStatus::Successful),
                None
            ),
            Progress::Done(_)
        ));
    }

    mod waiting {
        use super::super::*;
        use crate::kit::client::{AwsOptions, CallCounter};
        use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
        use aws_sdk_lambda::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};

        /// The emulator is Active at once; AWS is Pending first, then
        /// InProgress after an update: staged here.
        #[tokio::test]
        async fn an_update_waits_until_lambda_is_done_with_it() {
            let pending = mock!(Client::get_function_configuration)
                .sequence()
                .output(|| {
                    GetFunctionConfigurationOutput::builder()
                        .state(State::Pending)
                        .build()
                })
                .output(|| {
                    GetFunctionConfigurationOutput::builder()
                        .state(State::Active)
                        .last_update_status(LastUpdateStatus::InProgress)
                        .build()
                })
                .output(|| {
                    GetFunctionConfigurationOutput::builder()
                        .state(State::Active)
                        .last_update_status(LastUpdateStatus::Successful)
                        .build()
                })
                .build();
            let opts = AwsOptions {
                region: "us-east-1".into(),
                endpoint_url: Some("http://127.0.0.1:9".into()),
            };
            let mut cx = Cx::connect(&opts, "s", CallCounter::default()).await;
            cx.lambda = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&pending]);
            settled(&cx, "lambda_function.f", "f", "update")
                .await
                .unwrap();
            assert_eq!(pending.num_calls(), 3);
        }
    }
}
