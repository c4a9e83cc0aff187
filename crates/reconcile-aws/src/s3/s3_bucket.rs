//! `s3_bucket`: an S3 bucket with its default encryption, public access block,
//! object ownership, and, when declared, versioning, lifecycle rules, policy,
//! CORS rules and access logging.
//!
//! Observing reads only what the declaration manages: one ListBuckets for the
//! existence of every bucket, then per bucket the three settings that always
//! have a default (encryption, public access block, ownership), tags from the
//! stack tag index, and one read per optional setting the bucket declares.
//!
//! A bucket holds data: reconcile deletes a bucket that still holds objects
//! only when `force_destroy = true` was applied before, and says so in the
//! plan; otherwise the plan refuses the delete (see [`Provider::refuse_delete`]).

use crate::kit::adopt::is_ours;
use crate::kit::error::at;
use crate::kit::fields::{bool_of, changes_field, fields_of, str_of};
use crate::kit::policy::{document_problem, policy_norm};
use crate::kit::tags::{own_tags, stack_address, stack_resources_of_type};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketLoggingStatus, BucketVersioningStatus, CorsConfiguration, CorsRule,
    CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleAndOperator, LifecycleRuleFilter, LoggingEnabled, NoncurrentVersionExpiration,
    NoncurrentVersionTransition, ObjectIdentifier, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, Transition, TransitionStorageClass, VersioningConfiguration,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{HashMap, HashSet};

pub struct S3Bucket;

const SSE: &[&str] = &["AES256", "aws:kms", "aws:kms:dsse"];
const OWNERSHIP: &[&str] = &[
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];
/// Classes AWS lets objects move to only after 30 days in S3 Standard.
const INFREQUENT: &[&str] = &["STANDARD_IA", "ONEZONE_IA"];
/// Classes that must come 30 days after an infrequent-access transition.
const ARCHIVE: &[&str] = &["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"];
/// The public access block settings, all four written in one call.
const BLOCKS: &[&str] = &[
    "block_public_acls",
    "ignore_public_acls",
    "block_public_policy",
    "restrict_public_buckets",
];
/// DeleteObjects and ListObjectVersions take at most this many keys.
const BATCH: i32 = 1000;
const DAYS_MAX: i64 = i32::MAX as i64;

const TRANSITION_FIELDS: &[Field] = &[
    Field::new(
        "days",
        Ty::Int,
        "Days after an object's creation before it moves; at least 30 for STANDARD_IA and \
         ONEZONE_IA.",
    )
    .range(0, DAYS_MAX)
    .required(),
    Field::new(
        "storage_class",
        Ty::Enum(STORAGE_CLASSES),
        "The storage class objects move to.",
    )
    .required(),
];

const NONCURRENT_TRANSITION_FIELDS: &[Field] = &[
    Field::new(
        "noncurrent_days",
        Ty::Int,
        "Days after a version stops being current before it moves; at least 30 for \
         STANDARD_IA and ONEZONE_IA.",
    )
    .range(1, DAYS_MAX)
    .required(),
    Field::new(
        "storage_class",
        Ty::Enum(STORAGE_CLASSES),
        "The storage class noncurrent versions move to.",
    )
    .required(),
];

const RULE_FIELDS: &[Field] = &[
    Field::new(
        "id",
        Ty::Str,
        "The rule's name, unique in the bucket (up to 255 characters).",
    )
    .required(),
    Field::new("enabled", Ty::Bool, "Whether the rule runs.").default(Default::Bool(true)),
    Field::new(
        "prefix",
        Ty::Str,
        "Only objects whose key starts with this prefix (all objects when left out).",
    ),
    Field::new(
        "tags",
        Ty::Map(&Ty::Str),
        "Only objects carrying all these tags (with `prefix`, objects matching both).",
    ),
    Field::new(
        "transitions",
        Ty::List(&Ty::Object(TRANSITION_FIELDS)),
        "Moves of current objects to cheaper storage classes.",
    ),
    Field::new(
        "expiration_days",
        Ty::Int,
        "Days after creation when current objects expire (deleted, or made noncurrent in a \
         versioned bucket); later than every transition.",
    )
    .range(1, DAYS_MAX),
    Field::new(
        "noncurrent_version_transitions",
        Ty::List(&Ty::Object(NONCURRENT_TRANSITION_FIELDS)),
        "Moves of noncurrent versions to cheaper storage classes.",
    ),
    Field::new(
        "noncurrent_version_expiration_days",
        Ty::Int,
        "Days after a version stops being current when it is deleted; later than every \
         noncurrent transition.",
    )
    .range(1, DAYS_MAX),
    Field::new(
        "abort_incomplete_multipart_upload_days",
        Ty::Int,
        "Days after an unfinished multipart upload starts when its parts are deleted \
         (not with `tags`: AWS refuses that).",
    )
    .range(1, DAYS_MAX),
];

const CORS_FIELDS: &[Field] = &[
    Field::new(
        "allowed_methods",
        Ty::List(&Ty::Enum(&["GET", "PUT", "POST", "DELETE", "HEAD"])),
        "HTTP methods the origins may use.",
    )
    .required(),
    Field::new(
        "allowed_origins",
        Ty::List(&Ty::Str),
        "Origins allowed to make cross-origin requests (`https://app.example.com`, `*`).",
    )
    .required(),
    Field::new(
        "allowed_headers",
        Ty::List(&Ty::Str),
        "Headers a preflight request may ask for.",
    ),
    Field::new(
        "expose_headers",
        Ty::List(&Ty::Str),
        "Response headers the browser may show to the page.",
    ),
    Field::new(
        "max_age_seconds",
        Ty::Int,
        "How long a browser may cache the preflight answer.",
    )
    .range(0, DAYS_MAX),
    Field::new("id", Ty::Str, "The rule's name (up to 255 characters)."),
];

pub static SCHEMA: Schema = Schema {
    kind: "s3_bucket",
    doc: "An S3 bucket. Default encryption, the public access block and object ownership are \
          always managed (their defaults: SSE-S3, everything blocked, ACLs disabled); \
          versioning, lifecycle rules, the policy, CORS rules and access logging are managed \
          when declared and neither read nor compared otherwise. Removing a bucket that \
          still holds objects is refused by the plan unless `force_destroy = true` was applied \
          first; then every object version goes with it. Observing costs one ListBuckets for \
          all buckets, GetBucketEncryption, GetPublicAccessBlock and GetBucketOwnershipControls \
          per bucket (concurrently), one read per declared optional setting, and tags from the \
          plan's one Resource Groups Tagging API read of the whole stack (else one \
          GetBucketTagging per bucket). The emulator reports no default encryption on a new \
          bucket (AWS has SSE-S3 on every bucket since 2023); reconcile writes the encryption \
          at create either way. The emulator also answers GetBucketVersioning under a root \
          element the SDK refuses; reconcile then reads the status from the raw answer. A \
          create that finds the name already in the account takes that bucket over when it \
          carries no tags or this address's, and refuses otherwise.",
    fields: &[
        Field::new(
            "name",
            Ty::Str,
            "The bucket name, unique across all of AWS: 3 to 63 lowercase letters, digits, dots \
             and hyphens, starting and ending with a letter or digit. Changing it replaces the \
             bucket (which the plan refuses while the old one holds objects and \
             `force_destroy` is not applied).",
        )
        .required()
        .force_new(),
        Field::new(
            "versioning",
            Ty::Enum(&["Enabled", "Suspended"]),
            "Keep every version of every object (`Enabled`), or stop making new versions \
             (`Suspended`; a bucket that never had versioning reads as `Suspended`, since \
             neither keeps versions). Left out, not managed. Updated in place.",
        ),
        Field::new(
            "sse_algorithm",
            Ty::Enum(SSE),
            "Default encryption of new objects: `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or \
             `aws:kms:dsse` (dual-layer SSE-KMS). Updated in place.",
        )
        .default(Default::Str("AES256")),
        Field::new(
            "kms_master_key_id",
            Ty::Str,
            "The KMS key for `aws:kms` and `aws:kms:dsse` (`${kms_key.data.arn}`); left out, \
             S3's AWS managed key `aws/s3`. A key id and its ARN compare equal. Only with KMS \
             encryption. Updated in place.",
        )
        .norm(Norm::With(key_norm)),
        Field::new(
            "bucket_key_enabled",
            Ty::Bool,
            "Use an S3 Bucket Key, which cuts KMS requests (and their cost) for SSE-KMS; only \
             with `sse_algorithm = \"aws:kms\"`. Updated in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "block_public_acls",
            Ty::Bool,
            "Refuse requests that set public ACLs. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "ignore_public_acls",
            Ty::Bool,
            "Ignore public ACLs already on the bucket and its objects. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "block_public_policy",
            Ty::Bool,
            "Refuse bucket policies that grant public access. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "restrict_public_buckets",
            Ty::Bool,
            "Limit access under a public policy to AWS services and the bucket owner's \
             account. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "object_ownership",
            Ty::Enum(OWNERSHIP),
            "Who owns uploaded objects: `BucketOwnerEnforced` disables ACLs (AWS's \
             recommendation), `BucketOwnerPreferred`, or `ObjectWriter` (what a bucket without \
             ownership controls does). Updated in place.",
        )
        .default(Default::Str("BucketOwnerEnforced")),
        Field::new(
            "lifecycle_rules",
            Ty::List(&Ty::Object(RULE_FIELDS)),
            "Lifecycle rules, compared as a set; `[]` means no rules. Left out, not managed. \
             Checked before any call: STANDARD_IA and ONEZONE_IA need 30 days, archive classes \
             30 days more than an infrequent-access transition of the same rule, expirations \
             come after transitions. Updated in place.",
        )
        .norm(Norm::With(lifecycle_norm))
        .set(),
        Field::new(
            "policy",
            Ty::Str,
            "The bucket policy as a JSON document, compared by meaning (key order, spacing and \
             one-item lists do not count); references such as `${iam_role.app.arn}` may appear \
             inside. Left out, not managed. Updated in place.",
        )
        .norm(Norm::With(policy_norm)),
        Field::new(
            "cors_rules",
            Ty::List(&Ty::Object(CORS_FIELDS)),
            "CORS rules, in order (the first that matches a request applies); `[]` means none. \
             Left out, not managed. Updated in place.",
        ),
        Field::new(
            "logging_target_bucket",
            Ty::Str,
            "The bucket that receives server access logs. Left out, logging is not managed. \
             Updated in place.",
        ),
        Field::new(
            "logging_target_prefix",
            Ty::Str,
            "Key prefix of the access log objects; only with `logging_target_bucket`. Updated \
             in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "force_destroy",
            Ty::Bool,
            "Let reconcile delete every object and object version when it deletes the bucket \
             (removed from the stack, replaced, or destroyed). Takes effect once applied: set \
             it, apply, then remove the bucket.",
        )
        .default(Default::Bool(false))
        .local(),
    ],
    attributes: &[
        ("id", "The bucket name."),
        ("arn", "The bucket's ARN, `arn:aws:s3:::NAME`."),
        (
            "bucket_domain_name",
            "The bucket's global endpoint, `NAME.s3.amazonaws.com`.",
        ),
        (
            "bucket_regional_domain_name",
            "The bucket's endpoint in its region, `NAME.s3.REGION.amazonaws.com`.",
        ),
    ],
    taggable: true,
};

/// A KMS key as its key id (`alias/NAME` for an alias), so that a key id and
/// its ARN, which AWS may answer for one another, compare equal.
fn key_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::str(key_part(s)),
        other => other.clone(),
    }
}

fn key_part(s: &str) -> &str {
    if !s.starts_with("arn:") {
        return s;
    }
    match s.split(':').nth(5) {
        Some(tail) if tail.starts_with("alias/") => tail,
        Some(tail) => tail.strip_prefix("key/").unwrap_or(s),
        None => s,
    }
}

/// Lifecycle rules without an empty prefix, which AWS answers for "every object".
fn lifecycle_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::List(rules) => Value::List(
            rules
                .iter()
                .map(|r| match r {
                    Value::Map(m) if m.get("prefix").and_then(Value::as_str) == Some("") => {
                        let mut m = m.clone();
                        m.shift_remove("prefix");
                        Value::Map(m)
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks a bucket name as AWS does for general purpose buckets.
pub fn check_bucket_name(s: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("\"{s}\" is not a valid bucket name: {why}"));
    if s.len() < 3 || s.len() > 63 {
        return fail("a bucket name has 3 to 63 characters");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return fail(&format!(
            "`{c}` is not allowed; only lowercase letters, digits, dots and hyphens are"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return fail("it must start and end with a letter or a digit");
    }
    for bad in ["..", ".-", "-."] {
        if s.contains(bad) {
            return fail(&format!("`{bad}` may not appear in it"));
        }
    }
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("it may not be formatted like an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if s.starts_with(prefix) {
            return fail(&format!("the prefix `{prefix}` is reserved by AWS"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3"] {
        if s.ends_with(suffix) {
            return fail(&format!("the suffix `{suffix}` is reserved by AWS"));
        }
    }
    Ok(())
}

/// A value a reference supplies at apply: not checked until then.
fn is_template(s: &str) -> bool {
    s.contains("${")
}

fn int(m: &IndexMap<String, Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(Value::as_int)
}

/// The (days, storage class) pairs of a rule's transition list under `key`.
fn moves(rule: &IndexMap<String, Value>, key: &str, days: &str) -> Vec<(i64, String)> {
    rule.get(key)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            let t = t.as_map()?;
            Some((int(t, days)?, t.get("storage_class")?.as_str()?.to_string()))
        })
        .collect()
}

/// Problems with one lifecycle rule's transitions (current or noncurrent).
fn transition_problems(
    what: &str,
    steps: &[(i64, String)],
    expires: Option<i64>,
    expiry_field: &str,
    out: &mut Vec<(String, String)>,
) {
    for (days, class) in steps {
        if INFREQUENT.contains(&class.as_str()) && *days < 30 {
            out.push((
                format!("{what} to {class} after {days} days; AWS moves objects to {class} only after at least 30 days"),
                "set the transition's days to 30 or more, or choose INTELLIGENT_TIERING or GLACIER_IR"
                    .into(),
            ));
        }
    }
    for (ia_days, ia) in steps
        .iter()
        .filter(|(_, c)| INFREQUENT.contains(&c.as_str()))
    {
        for (days, class) in steps.iter().filter(|(_, c)| ARCHIVE.contains(&c.as_str())) {
            if *days < ia_days + 30 {
                out.push((
                    format!(
                        "{what} to {class} after {days} days comes before {ia}'s minimum: \
                         objects must stay 30 days in {ia} (from day {ia_days})"
                    ),
                    format!(
                        "move the {class} transition to day {} or later, or drop the {ia} transition",
                        ia_days + 30
                    ),
                ));
            }
        }
    }
    if let Some(exp) = expires {
        if let Some((days, class)) = steps.iter().find(|(d, _)| exp <= *d) {
            out.push((
                format!("{expiry_field} ({exp}) is not later than the {what} to {class} after {days} days"),
                format!("set {expiry_field} greater than {days}, or remove that transition"),
            ));
        }
    }
}

/// Problems with declared lifecycle rules, each as (what, what to do).
fn lifecycle_problems(rules: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let Some(m) = r.as_map() else { continue };
        let id = m.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = if id.is_empty() {
            format!("lifecycle rule {}", i + 1)
        } else {
            format!("lifecycle rule `{id}`")
        };
        let mut mine = Vec::new();
        if id.is_empty() || id.len() > 255 {
            mine.push((
                "the rule id must have 1 to 255 characters".to_string(),
                "give the rule an `id` of up to 255 characters".to_string(),
            ));
        } else if !is_template(id) && !seen.insert(id.to_string()) {
            mine.push((
                "the rule id is used twice".into(),
                "give each lifecycle rule its own `id`".into(),
            ));
        }
        let has = |k: &str| {
            m.get(k)
                .is_some_and(|v| v.as_list().is_none_or(|l| !l.is_empty()))
        };
        if ![
            "transitions",
            "expiration_days",
            "noncurrent_version_transitions",
            "noncurrent_version_expiration_days",
            "abort_incomplete_multipart_upload_days",
        ]
        .iter()
        .any(|k| has(k))
        {
            mine.push((
                "the rule has no action".into(),
                "add transitions, expiration_days, noncurrent_version_transitions, \
                 noncurrent_version_expiration_days or abort_incomplete_multipart_upload_days"
                    .into(),
            ));
        }
        if has("abort_incomplete_multipart_upload_days")
            && m.get("tags")
                .and_then(Value::as_map)
                .is_some_and(|t| !t.is_empty())
        {
            mine.push((
                "AWS refuses abort_incomplete_multipart_upload_days in a rule filtered by tags"
                    .into(),
                "move it into a rule of its own without `tags`".into(),
            ));
        }
        transition_problems(
            "the transition",
            &moves(m, "transitions", "days"),
            int(m, "expiration_days"),
            "expiration_days",
            &mut mine,
        );
        transition_problems(
            "the noncurrent version transition",
            &moves(m, "noncurrent_version_transitions", "noncurrent_days"),
            int(m, "noncurrent_version_expiration_days"),
            "noncurrent_version_expiration_days",
            &mut mine,
        );
        out.extend(
            mine.into_iter()
                .map(|(msg, help)| (format!("{name}: {msg}"), help)),
        );
    }
    out
}

/// Problems with a bucket's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(name) = str_of(f, "name").filter(|n| !is_template(n)) {
        if let Err(e) = check_bucket_name(name) {
            out.push((
                "name",
                e,
                "use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending \
                 with a letter or digit, like \"carebow-phi-documents\""
                    .into(),
            ));
        }
    }
    let sse = str_of(f, "sse_algorithm").unwrap_or("AES256");
    let kms = sse.starts_with("aws:kms");
    if f.contains_key("kms_master_key_id") && !kms {
        out.push((
            "kms_master_key_id",
            format!("a KMS key is set but sse_algorithm is {sse}"),
            "add `sse_algorithm = \"aws:kms\"`, or remove `kms_master_key_id`".into(),
        ));
    }
    if bool_of(f, "bucket_key_enabled") == Some(true) && sse != "aws:kms" {
        out.push((
            "bucket_key_enabled",
            format!("S3 Bucket Keys work with SSE-KMS only, and sse_algorithm is {sse}"),
            "set `sse_algorithm = \"aws:kms\"`, or remove `bucket_key_enabled`".into(),
        ));
    }
    if str_of(f, "logging_target_prefix").is_some_and(|p| !p.is_empty())
        && !f.contains_key("logging_target_bucket")
    {
        out.push((
            "logging_target_prefix",
            "a log prefix is set but no bucket receives the logs".into(),
            "add `logging_target_bucket`, or remove `logging_target_prefix`".into(),
        ));
    }
    if let Some((msg, help)) =
        str_of(f, "policy").and_then(|p| document_problem(p, "the bucket policy"))
    {
        out.push(("policy", msg, help));
    }
    if let Some(rules) = f.get("lifecycle_rules").and_then(Value::as_list) {
        out.extend(
            lifecycle_problems(rules)
                .into_iter()
                .map(|(msg, help)| ("lifecycle_rules", msg, help)),
        );
    }
    out
}

// ---- AWS shapes <-> fields -------------------------------------------------

fn bad(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::InvalidInput(e.to_string())
}

fn tags_of(list: &[Tag]) -> IndexMap<String, String> {
    own_tags(list.iter().map(|t| (t.key(), t.value())))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(bad))
        .collect()
}

fn str_map(m: &IndexMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::str(v))).collect())
}

/// One lifecycle rule as declared fields. Date-based actions, which the
/// fields cannot say, are left out (and so show as a difference).
#[allow(deprecated)] // The rule-level prefix: AWS still answers it for old rules.
pub fn rule_fields(r: &LifecycleRule) -> Value {
    let mut m = Fields::new();
    m.insert("id".into(), Value::str(r.id().unwrap_or_default()));
    m.insert(
        "enabled".into(),
        Value::Bool(r.status() == &ExpirationStatus::Enabled),
    );
    let mut prefix = r.prefix().map(str::to_string);
    let mut tags = IndexMap::new();
    if let Some(filter) = r.filter() {
        if let Some(p) = filter.prefix() {
            prefix = Some(p.to_string());
        }
        if let Some(t) = filter.tag() {
            tags.insert(t.key().to_string(), t.value().to_string());
        }
        if let Some(and) = filter.and() {
            if let Some(p) = and.prefix() {
                prefix = Some(p.to_string());
            }
            tags.extend(
                and.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
        }
    }
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        m.insert("prefix".into(), Value::str(p));
    }
    if !tags.is_empty() {
        tags.sort_keys();
        m.insert("tags".into(), str_map(&tags));
    }
    let step = |days_key: &str, days: Option<i32>, class: Option<&TransitionStorageClass>| {
        Some(Value::Map(fields_of([
            (days_key, Value::Int(i64::from(days?))),
            ("storage_class", Value::str(class?.as_str())),
        ])))
    };
    let transitions: Vec<Value> = r
        .transitions()
        .iter()
        .filter_map(|t| step("days", t.days(), t.storage_class()))
        .collect();
    if !transitions.is_empty() {
        m.insert("transitions".into(), Value::List(transitions));
    }
    if let Some(d) = r.expiration().and_then(|e| e.days()) {
        m.insert("expiration_days".into(), Value::Int(d.into()));
    }
    let noncurrent: Vec<Value> = r
        .noncurrent_version_transitions()
        .iter()
        .filter_map(|t| step("noncurrent_days", t.noncurrent_days(), t.storage_class()))
        .collect();
    if !noncurrent.is_empty() {
        m.insert(
            "noncurrent_version_transitions".into(),
            Value::List(noncurrent),
        );
    }
    if let Some(d) = r
        .noncurrent_version_expiration()
        .and_then(|e| e.noncurrent_days())
    {
        m.insert(
            "noncurrent_version_expiration_days".into(),
            Value::Int(d.into()),
        );
    }
    if let Some(d) = r
        .abort_incomplete_multipart_upload()
        .and_then(|a| a.days_after_initiation())
    {
        m.insert(
            "abort_incomplete_multipart_upload_days".into(),
            Value::Int(d.into()),
        );
    }
    Value::Map(m)
}

fn i32_in(m: &IndexMap<String, Value>, k: &str) -> Option<i32> {
    int(m, k).and_then(|i| i32::try_from(i).ok())
}

/// One declared lifecycle rule in AWS's shape.
pub fn aws_rule(v: &Value) -> Result<LifecycleRule, ProviderError> {
    let m = v
        .as_map()
        .ok_or_else(|| bad(format!("a lifecycle rule must be a table, found {v}")))?;
    let prefix = m
        .get("prefix")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let tags: IndexMap<String, String> = m
        .get("tags")
        .and_then(Value::as_map)
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    // AWS takes one condition bare and several under And.
    let filter = match (prefix, tags.len()) {
        (_, 0) => LifecycleRuleFilter::builder()
            .prefix(prefix.unwrap_or_default())
            .build(),
        (None, 1) => {
            let (k, v) = tags.iter().next().expect("one tag");
            LifecycleRuleFilter::builder()
                .tag(Tag::builder().key(k).value(v).build().map_err(bad)?)
                .build()
        }
        _ => LifecycleRuleFilter::builder()
            .and(
                LifecycleRuleAndOperator::builder()
                    .set_prefix(prefix.map(str::to_string))
                    .set_tags(Some(aws_tags(&tags)?))
                    .build(),
            )
            .build(),
    };
    let enabled = m.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let mut b = LifecycleRule::builder()
        .id(m.get("id").and_then(Value::as_str).unwrap_or_default())
        .status(if enabled {
            ExpirationStatus::Enabled
        } else {
            ExpirationStatus::Disabled
        })
        .filter(filter);
    for t in m
        .get("transitions")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        let t = t
            .as_map()
            .ok_or_else(|| bad("a transition must be a table"))?;
        b = b.transitions(
            Transition::builder()
                .set_days(i32_in(t, "days"))
                .set_storage_class(
                    t.get("storage_class")
                        .and_then(Value::as_str)
                        .map(TransitionStorageClass::from),
                )
                .build(),
        );
    }
    if let Some(d) = i32_in(m, "expiration_days") {
        b = b.expiration(LifecycleExpiration::builder().days(d).build());
    }
    for t in m
        .get("noncurrent_version_transitions")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        let t = t
            .as_map()
            .ok_or_else(|| bad("a transition must be a table"))?;
        b = b.noncurrent_version_transitions(
            NoncurrentVersionTransition::builder()
                .set_noncurrent_days(i32_in(t, "noncurrent_days"))
                .set_storage_class(
                    t.get("storage_class")
                        .and_then(Value::as_str)
                        .map(TransitionStorageClass::from),
                )
                .build(),
        );
    }
    if let Some(d) = i32_in(m, "noncurrent_version_expiration_days") {
        b = b.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(d)
                .build(),
        );
    }
    if let Some(d) = i32_in(m, "abort_incomplete_multipart_upload_days") {
        b = b.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(d)
                .build(),
        );
    }
    b.build().map_err(bad)
}

/// One CORS rule as declared fields.
pub fn cors_fields(r: &CorsRule) -> Value {
    let list = |l: &[String]| Value::List(l.iter().map(Value::str).collect());
    let mut m = fields_of([
        ("allowed_methods", list(r.allowed_methods())),
        ("allowed_origins", list(r.allowed_origins())),
    ]);
    if !r.allowed_headers().is_empty() {
        m.insert("allowed_headers".into(), list(r.allowed_headers()));
    }
    if !r.expose_headers().is_empty() {
        m.insert("expose_headers".into(), list(r.expose_headers()));
    }
    if let Some(s) = r.max_age_seconds() {
        m.insert("max_age_seconds".into(), Value::Int(s.into()));
    }
    if let Some(id) = r.id().filter(|i| !i.is_empty()) {
        m.insert("id".into(), Value::str(id));
    }
    Value::Map(m)
}

/// One declared CORS rule in AWS's shape.
pub fn aws_cors(v: &Value) -> Result<CorsRule, ProviderError> {
    let m = v
        .as_map()
        .ok_or_else(|| bad(format!("a CORS rule must be a table, found {v}")))?;
    let strs = |k: &str| m.get(k).map(Value::str_list);
    CorsRule::builder()
        .set_allowed_methods(strs("allowed_methods"))
        .set_allowed_origins(strs("allowed_origins"))
        .set_allowed_headers(strs("allowed_headers"))
        .set_expose_headers(strs("expose_headers"))
        .set_max_age_seconds(i32_in(m, "max_age_seconds"))
        .set_id(m.get("id").and_then(Value::as_str).map(str::to_string))
        .build()
        .map_err(bad)
}

// ---- reads ------------------------------------------------------------------

/// What one S3 read answered: the setting, the setting not configured (AWS's
/// own "no such configuration" codes), or the bucket gone.
pub(super) enum Got<T> {
    Set(T),
    Unset,
    Gone,
}

pub(super) fn got<T, E, R>(
    r: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    unset: &[&str],
) -> Result<Got<T>, ProviderError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + 'static,
{
    match r.map_err(ProviderError::from_sdk) {
        Ok(v) => Ok(Got::Set(v)),
        Err(e) if e.code() == Some("NoSuchBucket") || e.is_not_found() => Ok(Got::Gone),
        Err(e) if e.code().is_some_and(|c| unset.contains(&c)) => Ok(Got::Unset),
        Err(e) => Err(e),
    }
}

fn arn_of(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

/// The bucket name of a bucket ARN (`arn:PARTITION:s3:::NAME`); `None` for
/// other S3 ARNs (access points, say).
fn bucket_of(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(':')?;
    let name = rest.strip_prefix("s3:::")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Every bucket name of the account, from one ListBuckets: a bucket has no
/// batch describe, and a read per bucket would cost one call each.
async fn bucket_names(cx: &Cx) -> Result<HashSet<String>, ProviderError> {
    let mut names = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        // No MaxBuckets: with it the emulator cuts the list without a token.
        let out = cx
            .s3
            .list_buckets()
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| {
                at(
                    &format!("s3_bucket (stack {})", cx.stack),
                    "ListBuckets",
                    e.into(),
                )
            })?;
        names.extend(
            out.buckets()
                .iter()
                .filter_map(|b| b.name())
                .map(str::to_string),
        );
        match out.continuation_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(names),
        }
    }
}

/// A bucket's tags with S3's own call; `None` when it is gone.
async fn bucket_tags(
    cx: &Cx,
    name: &str,
) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    match got(
        cx.s3.get_bucket_tagging().bucket(name).send().await,
        &["NoSuchTagSet"],
    )? {
        Got::Set(out) => Ok(Some(tags_of(out.tag_set()))),
        Got::Unset => Ok(Some(IndexMap::new())),
        Got::Gone => Ok(None),
    }
}

async fn encryption(cx: &Cx, name: &str) -> Result<Got<Fields>, ProviderError> {
    let out = got(
        cx.s3.get_bucket_encryption().bucket(name).send().await,
        &["ServerSideEncryptionConfigurationNotFoundError"],
    )?;
    Ok(match out {
        Got::Set(out) => {
            let mut f = Fields::new();
            let rule = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first());
            if let Some(d) = rule.and_then(|r| r.apply_server_side_encryption_by_default()) {
                f.insert(
                    "sse_algorithm".into(),
                    Value::str(d.sse_algorithm().as_str()),
                );
                if let Some(k) = d.kms_master_key_id().filter(|k| !k.is_empty()) {
                    f.insert("kms_master_key_id".into(), Value::str(k));
                }
            }
            let key = rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false);
            f.insert("bucket_key_enabled".into(), Value::Bool(key));
            Got::Set(f)
        }
        // No default encryption: `sse_algorithm` stays unobserved, which
        // differs from any declared (or defaulted) value.
        Got::Unset => Got::Set(fields_of([("bucket_key_enabled", Value::Bool(false))])),
        Got::Gone => Got::Gone,
    })
}

async fn public_access(cx: &Cx, name: &str) -> Result<Got<Fields>, ProviderError> {
    let out = got(
        cx.s3.get_public_access_block().bucket(name).send().await,
        &["NoSuchPublicAccessBlockConfiguration"],
    )?;
    let c = match out {
        Got::Set(out) => out.public_access_block_configuration().cloned(),
        Got::Unset => None,
        Got::Gone => return Ok(Got::Gone),
    };
    let c = c.unwrap_or_else(|| PublicAccessBlockConfiguration::builder().build());
    Ok(Got::Set(fields_of([
        (
            "block_public_acls",
            Value::Bool(c.block_public_acls().unwrap_or(false)),
        ),
        (
            "ignore_public_acls",
            Value::Bool(c.ignore_public_acls().unwrap_or(false)),
        ),
        (
            "block_public_policy",
            Value::Bool(c.block_public_policy().unwrap_or(false)),
        ),
        (
            "restrict_public_buckets",
            Value::Bool(c.restrict_public_buckets().unwrap_or(false)),
        ),
    ])))
}

async fn ownership(cx: &Cx, name: &str) -> Result<Got<Fields>, ProviderError> {
    let out = got(
        cx.s3
            .get_bucket_ownership_controls()
            .bucket(name)
            .send()
            .await,
        &["OwnershipControlsNotFoundError"],
    )?;
    let owner = match out {
        Got::Set(out) => out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_string()),
        Got::Unset => None,
        Got::Gone => return Ok(Got::Gone),
    };
    // Without ownership controls, the writer of an object owns it.
    let owner = owner.unwrap_or_else(|| "ObjectWriter".into());
    Ok(Got::Set(fields_of([(
        "object_ownership",
        Value::str(owner),
    )])))
}

/// One existing bucket's always-managed settings and tags; `None` when it is gone.
async fn read(cx: &Cx, name: &str) -> Result<Option<Observed>, ProviderError> {
    let (enc, block, owner) = futures::try_join!(
        encryption(cx, name),
        public_access(cx, name),
        ownership(cx, name)
    )?;
    let (Got::Set(enc), Got::Set(block), Got::Set(owner)) = (enc, block, owner) else {
        return Ok(None);
    };
    let arn = arn_of(name);
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, name, &arn).await {
        Some(t) => t,
        None => match bucket_tags(cx, name).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    let mut fields = fields_of([
        ("name", Value::str(name)),
        // Not read unless logging is declared: the default stands in for it.
        ("logging_target_prefix", Value::str("")),
    ]);
    fields.extend(enc);
    fields.extend(block);
    fields.extend(owner);
    Ok(Some(Observed {
        id: name.to_string(),
        fields,
        attributes: attributes(cx, name),
        tags,
    }))
}

fn attributes(cx: &Cx, name: &str) -> Fields {
    fields_of([
        ("id", Value::str(name)),
        ("arn", Value::str(arn_of(name))),
        (
            "bucket_domain_name",
            Value::str(format!("{name}.s3.amazonaws.com")),
        ),
        (
            "bucket_regional_domain_name",
            Value::str(format!("{name}.s3.{}.amazonaws.com", cx.region)),
        ),
    ])
}

/// The optional settings a declaration may manage, each read with its own call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Setting {
    Versioning,
    Lifecycle,
    Policy,
    Cors,
    Logging,
}

const SETTINGS: &[Setting] = &[
    Setting::Versioning,
    Setting::Lifecycle,
    Setting::Policy,
    Setting::Cors,
    Setting::Logging,
];

impl Setting {
    /// The field whose declaration makes the setting managed.
    fn field(self) -> &'static str {
        match self {
            Setting::Versioning => "versioning",
            Setting::Lifecycle => "lifecycle_rules",
            Setting::Policy => "policy",
            Setting::Cors => "cors_rules",
            Setting::Logging => "logging_target_bucket",
        }
    }

    /// Reads the setting into observed fields; `None` when the bucket is gone.
    async fn read(self, cx: &Cx, name: &str) -> Result<Option<Fields>, ProviderError> {
        let mut f = Fields::new();
        match self {
            Setting::Versioning => {
                let answer = cx.s3.get_bucket_versioning().bucket(name).send().await;
                let status = match answer {
                    Ok(out) => out.status().map(|s| s.as_str().to_string()),
                    Err(e) => match unread_versioning(&e) {
                        Some(status) => status,
                        None => match got::<(), _, _>(Err(e), &[])? {
                            Got::Gone => return Ok(None),
                            _ => None,
                        },
                    },
                };
                // Never enabled, a bucket answers no status; it keeps no
                // versions, as a suspended one does.
                let status = status.unwrap_or_else(|| "Suspended".into());
                f.insert("versioning".into(), Value::str(status));
            }
            Setting::Lifecycle => {
                let out = got(
                    cx.s3
                        .get_bucket_lifecycle_configuration()
                        .bucket(name)
                        .send()
                        .await,
                    &["NoSuchLifecycleConfiguration"],
                )?;
                let rules = match out {
                    Got::Set(out) => out.rules().iter().map(rule_fields).collect(),
                    Got::Unset => vec![],
                    Got::Gone => return Ok(None),
                };
                f.insert("lifecycle_rules".into(), Value::List(rules));
            }
            Setting::Policy => {
                match got(
                    cx.s3.get_bucket_policy().bucket(name).send().await,
                    &["NoSuchBucketPolicy"],
                )? {
                    Got::Set(out) => {
                        if let Some(p) = out.policy() {
                            f.insert("policy".into(), Value::str(p));
                        }
                    }
                    Got::Unset => {}
                    Got::Gone => return Ok(None),
                }
            }
            Setting::Cors => {
                let out = got(
                    cx.s3.get_bucket_cors().bucket(name).send().await,
                    &["NoSuchCORSConfiguration"],
                )?;
                let rules = match out {
                    Got::Set(out) => out.cors_rules().iter().map(cors_fields).collect(),
                    Got::Unset => vec![],
                    Got::Gone => return Ok(None),
                };
                f.insert("cors_rules".into(), Value::List(rules));
            }
            Setting::Logging => {
                match got(cx.s3.get_bucket_logging().bucket(name).send().await, &[])? {
                    Got::Set(out) => {
                        if let Some(l) = out.logging_enabled() {
                            f.insert(
                                "logging_target_bucket".into(),
                                Value::str(l.target_bucket()),
                            );
                            f.insert(
                                "logging_target_prefix".into(),
                                Value::str(l.target_prefix()),
                            );
                        }
                    }
                    Got::Unset => {}
                    Got::Gone => return Ok(None),
                }
            }
        }
        Ok(Some(f))
    }
}

/// The status in a GetBucketVersioning answer the SDK could not read, when
/// that answer is the emulator's: it names the root element
/// `GetBucketVersioningResponse` where AWS says `VersioningConfiguration`.
/// `None` for any other failure.
fn unread_versioning<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Option<Option<String>> {
    let body = e.raw_response()?.body().bytes()?;
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<GetBucketVersioningResponse") {
        return None;
    }
    let status = text
        .split_once("<Status>")
        .and_then(|(_, rest)| rest.split_once("</Status>"))
        .map(|(s, _)| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Some(status)
}

/// Reads `settings` of the bucket into `o`, concurrently.
async fn read_settings(
    cx: &Cx,
    name: &str,
    settings: &[Setting],
) -> Result<Option<Fields>, ProviderError> {
    let reads = settings.iter().map(|s| s.read(cx, name));
    let mut out = Fields::new();
    for f in futures::future::try_join_all(reads).await? {
        match f {
            Some(f) => out.extend(f),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

// ---- writes -----------------------------------------------------------------

/// The bucket's object versions and delete markers, the first `max` (at most
/// 1000) in key order; `None` when the bucket is gone.
async fn versions(
    cx: &Cx,
    name: &str,
    max: i32,
) -> Result<Option<Vec<ObjectIdentifier>>, ProviderError> {
    let out = match got(
        cx.s3
            .list_object_versions()
            .bucket(name)
            .max_keys(max)
            .send()
            .await,
        &[],
    )? {
        Got::Set(out) => out,
        _ => return Ok(None),
    };
    let ids = out
        .versions()
        .iter()
        .map(|v| (v.key(), v.version_id()))
        .chain(
            out.delete_markers()
                .iter()
                .map(|d| (d.key(), d.version_id())),
        )
        .filter_map(|(k, v)| {
            ObjectIdentifier::builder()
                .key(k?)
                .set_version_id(v.map(str::to_string))
                .build()
                .ok()
        })
        .collect();
    Ok(Some(ids))
}

fn holds_objects(name: &str, found: usize) -> String {
    format!(
        "the bucket `{name}` still holds objects ({found}+ found); reconcile deletes objects only \
         when `force_destroy = true` has been applied: set it, apply, then remove the bucket \
         (or empty it yourself)"
    )
}

fn force_destroy(applied: Option<&Fields>) -> bool {
    applied.and_then(|f| bool_of(f, "force_destroy")) == Some(true)
}

/// Deletes every object version and delete marker, a page at a time.
async fn empty(cx: &Cx, name: &str, who: &str) -> Result<(), ProviderError> {
    // Each pass lists from the start: what was listed is deleted before the next.
    loop {
        let Some(ids) = versions(cx, name, BATCH).await? else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let n = ids.len();
        let out = cx
            .s3
            .delete_objects()
            .bucket(name)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(bad)?,
            )
            .send()
            .await
            .map_err(|e| at(who, "DeleteObjects", e.into()))?;
        if let Some(e) = out.errors().first() {
            return Err(ProviderError::Other(format!(
                "{who}: DeleteObjects: {} of {n} objects not deleted, the first `{}`: {} {}",
                out.errors().len(),
                e.key().unwrap_or_default(),
                e.code().unwrap_or_default(),
                e.message().unwrap_or_default()
            )));
        }
        tracing::info!(
            bucket = name,
            deleted = n,
            "deleted object versions (force_destroy)"
        );
    }
}

impl S3Bucket {
    /// Brings the bucket to `want` for the changed fields; `all` writes every
    /// setting the declaration has (a new or adopted bucket).
    async fn sync(
        &self,
        cx: &Cx,
        name: &str,
        want: &Desired<'_>,
        changes: &[FieldChange],
        all: bool,
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let touched = |keys: &[&str]| all || keys.iter().any(|k| changes_field(changes, k));
        if all || changes_field(changes, "tags") {
            cx.s3
                .put_bucket_tagging()
                .bucket(name)
                .tagging(
                    Tagging::builder()
                        .set_tag_set(Some(aws_tags(want.tags)?))
                        .build()
                        .map_err(bad)?,
                )
                .send()
                .await
                .map_err(|e| at(a, "PutBucketTagging", e.into()))?;
        }
        if touched(BLOCKS) {
            let on = |k| bool_of(f, k).unwrap_or(true);
            cx.s3
                .put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(on("block_public_acls"))
                        .ignore_public_acls(on("ignore_public_acls"))
                        .block_public_policy(on("block_public_policy"))
                        .restrict_public_buckets(on("restrict_public_buckets"))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| at(a, "PutPublicAccessBlock", e.into()))?;
        }
        if touched(&["sse_algorithm", "kms_master_key_id", "bucket_key_enabled"]) {
            let sse = str_of(f, "sse_algorithm").unwrap_or("AES256");
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(sse))
                .set_kms_master_key_id(str_of(f, "kms_master_key_id").map(str::to_string))
                .build()
                .map_err(bad)?;
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(bool_of(f, "bucket_key_enabled").unwrap_or(false))
                .build();
            cx.s3
                .put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .map_err(bad)?,
                )
                .send()
                .await
                .map_err(|e| at(a, "PutBucketEncryption", e.into()))?;
        }
        // A new bucket got its ownership with CreateBucket.
        if changes_field(changes, "object_ownership") {
            let rule = OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::from(
                    str_of(f, "object_ownership").unwrap_or("BucketOwnerEnforced"),
                ))
                .build()
                .map_err(bad)?;
            cx.s3
                .put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(
                    OwnershipControls::builder()
                        .rules(rule)
                        .build()
                        .map_err(bad)?,
                )
                .send()
                .await
                .map_err(|e| at(a, "PutBucketOwnershipControls", e.into()))?;
        }
        if let Some(v) = str_of(f, "versioning").filter(|_| touched(&["versioning"])) {
            // A new bucket has no versioning, which reads as suspended already.
            if !(all && v == "Suspended") {
                cx.s3
                    .put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::from(v))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| at(a, "PutBucketVersioning", e.into()))?;
            }
        }
        if let Some(rules) = f
            .get("lifecycle_rules")
            .filter(|_| touched(&["lifecycle_rules"]))
        {
            let rules = rules
                .as_list()
                .ok_or_else(|| bad(format!("{a}: lifecycle_rules must be a list")))?;
            if rules.is_empty() {
                if !all {
                    cx.s3
                        .delete_bucket_lifecycle()
                        .bucket(name)
                        .send()
                        .await
                        .map_err(|e| at(a, "DeleteBucketLifecycle", e.into()))?;
                }
            } else {
                let rules = rules.iter().map(aws_rule).collect::<Result<Vec<_>, _>>()?;
                cx.s3
                    .put_bucket_lifecycle_configuration()
                    .bucket(name)
                    .lifecycle_configuration(
                        BucketLifecycleConfiguration::builder()
                            .set_rules(Some(rules))
                            .build()
                            .map_err(bad)?,
                    )
                    .send()
                    .await
                    .map_err(|e| at(a, "PutBucketLifecycleConfiguration", e.into()))?;
            }
        }
        if let Some(p) = str_of(f, "policy").filter(|_| touched(&["policy"])) {
            cx.s3
                .put_bucket_policy()
                .bucket(name)
                .policy(p)
                .send()
                .await
                .map_err(|e| at(a, "PutBucketPolicy", e.into()))?;
        }
        if let Some(rules) = f.get("cors_rules").filter(|_| touched(&["cors_rules"])) {
            let rules = rules
                .as_list()
                .ok_or_else(|| bad(format!("{a}: cors_rules must be a list")))?;
            if rules.is_empty() {
                if !all {
                    cx.s3
                        .delete_bucket_cors()
                        .bucket(name)
                        .send()
                        .await
                        .map_err(|e| at(a, "DeleteBucketCors", e.into()))?;
                }
            } else {
                let rules = rules.iter().map(aws_cors).collect::<Result<Vec<_>, _>>()?;
                cx.s3
                    .put_bucket_cors()
                    .bucket(name)
                    .cors_configuration(
                        CorsConfiguration::builder()
                            .set_cors_rules(Some(rules))
                            .build()
                            .map_err(bad)?,
                    )
                    .send()
                    .await
                    .map_err(|e| at(a, "PutBucketCors", e.into()))?;
            }
        }
        let logging = f.contains_key("logging_target_bucket");
        if (logging && touched(&["logging_target_bucket", "logging_target_prefix"]))
            || (!all && changes_field(changes, "logging_target_bucket"))
        {
            let enabled = match str_of(f, "logging_target_bucket") {
                Some(target) => Some(
                    LoggingEnabled::builder()
                        .target_bucket(target)
                        .target_prefix(str_of(f, "logging_target_prefix").unwrap_or_default())
                        .build()
                        .map_err(bad)?,
                ),
                None => None,
            };
            cx.s3
                .put_bucket_logging()
                .bucket(name)
                .bucket_logging_status(
                    BucketLoggingStatus::builder()
                        .set_logging_enabled(enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| at(a, "PutBucketLogging", e.into()))?;
        }
        Ok(())
    }

    /// The bucket `name` when it already exists in this account: adopted when
    /// it carries no tags, or this stack's tags for this address (what an
    /// interrupted create leaves); refused otherwise. `None`: it does not exist
    /// here (or is not readable, and CreateBucket will say why).
    async fn existing(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
    ) -> Result<Option<()>, ProviderError> {
        let a = want.address;
        let tags = match got(
            cx.s3.get_bucket_tagging().bucket(name).send().await,
            &["NoSuchTagSet"],
        ) {
            Ok(Got::Set(out)) => tags_of(out.tag_set()),
            Ok(Got::Unset) => IndexMap::new(),
            Ok(Got::Gone) | Err(_) => return Ok(None),
        };
        if !tags.is_empty() && !is_ours(cx, &tags, a) {
            let owner = stack_address(cx, &tags)
                .map(|o| format!(" (it is this stack's `{o}`)"))
                .unwrap_or_default();
            return Err(ProviderError::InvalidInput(format!(
                "{a}: the bucket `{name}` already exists in this account with other tags{owner}; \
                 adopt it with `reconcile import {a} {name}`, or choose another name"
            )));
        }
        tracing::info!(address = a, bucket = name, "adopting the existing bucket");
        Ok(Some(()))
    }
}

#[async_trait]
impl Provider for S3Bucket {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    fn delete_note(&self, applied: Option<&Fields>) -> Option<String> {
        force_destroy(applied)
            .then(|| "deletes every object and version in the bucket (force_destroy)".to_string())
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let names = bucket_names(cx).await?;
        let reads = ids
            .iter()
            .filter(|id| names.contains(*id))
            .map(|id| read(cx, id))
            .collect();
        Ok(by_id(each(reads).await?))
    }

    /// The optional settings, read only for buckets that declare them: left
    /// out they are not compared, and a no-op plan should not pay for them.
    async fn observe_against_desired(
        &self,
        cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        let wanted: Vec<(String, Vec<Setting>)> = items
            .iter()
            .map(|(r, o)| {
                let s = SETTINGS
                    .iter()
                    .copied()
                    .filter(|s| r.fields.contains_key(s.field()))
                    .collect::<Vec<_>>();
                (o.id.clone(), s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let reads = wanted
            .iter()
            .map(|(name, s)| async move {
                Ok(read_settings(cx, name, s).await?.map(|f| (name.clone(), f)))
            })
            .collect();
        let read: HashMap<String, Fields> = each(reads).await?.into_iter().collect();
        for (_, o) in items.iter_mut() {
            if let Some(f) = read.get(&o.id) {
                o.fields.extend(f.clone());
            }
        }
        Ok(())
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        let reads = arns
            .iter()
            .map(|arn| async move {
                let Some(name) = bucket_of(arn) else {
                    return Ok(None);
                };
                Ok(bucket_tags(cx, name).await?.map(|t| (arn.clone(), t)))
            })
            .collect();
        Ok(Some(each(reads).await?.into_iter().collect()))
    }

    /// One Tagging API listing of the stack's buckets, then a full read of
    /// each copy for the addresses asked, optional settings included: an
    /// adoption is compared before any other observation.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let found: Vec<(String, String)> = stack_resources_of_type(cx, "s3")
            .await?
            .into_iter()
            .filter_map(|(arn, tags)| {
                let name = bucket_of(&arn)?.to_string();
                let address = stack_address(cx, &tags)?;
                (addresses.is_empty() || addresses.contains(&address)).then_some((name, address))
            })
            .collect();
        let reads = found
            .iter()
            .map(|(name, address)| async move {
                let Some(mut o) = read(cx, name).await? else {
                    return Ok(None);
                };
                let Some(more) = read_settings(cx, name, SETTINGS).await? else {
                    return Ok(None);
                };
                o.fields.extend(more);
                Ok(Some((address.clone(), o)))
            })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        crate::kit::fields::refuse(a, problems(f))?;
        let name = str_of(f, "name")
            .ok_or_else(|| bad(format!("{a}: the bucket has no name")))?
            .to_string();
        // Looked for first: in us-east-1, CreateBucket answers success for a
        // bucket the account already owns.
        let adopted = self.existing(cx, want, &name).await?.is_some();
        if !adopted {
            let config = (cx.region != "us-east-1").then(|| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(cx.region.as_str()))
                    .build()
            });
            let made = cx
                .s3
                .create_bucket()
                .bucket(&name)
                .set_create_bucket_configuration(config)
                .object_ownership(ObjectOwnership::from(
                    str_of(f, "object_ownership").unwrap_or("BucketOwnerEnforced"),
                ))
                .send()
                .await
                .map_err(ProviderError::from_sdk);
            match made {
                Ok(_) => {}
                Err(e) if e.code() == Some("BucketAlreadyExists") => {
                    return Err(ProviderError::InvalidInput(format!(
                        "{a}: the bucket name `{name}` is taken by another AWS account; bucket \
                         names are global: choose another name"
                    )))
                }
                Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {
                    return Err(ProviderError::InvalidInput(format!(
                        "{a}: the bucket `{name}` already exists in this account (in another \
                         region?); adopt it with `reconcile import {a} {name}`, or choose \
                         another name"
                    )))
                }
                Err(e) => return Err(at(a, "CreateBucket", e)),
            }
        }
        // Tags come first, so an interrupted create is found again by them.
        let ownership_change = [FieldChange::new("object_ownership", None, None, false)];
        let changes: &[FieldChange] = if adopted { &ownership_change } else { &[] };
        self.sync(cx, &name, want, changes, true).await?;
        Ok(Observed {
            id: name.clone(),
            fields: f.clone(),
            attributes: attributes(cx, &name),
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
        self.sync(cx, &live.id, want, changes, false).await?;
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: attributes(cx, &live.id),
            tags: want.tags.clone(),
        })
    }

    async fn refuse_delete(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<Option<String>, ProviderError> {
        if force_destroy(applied) {
            return Ok(None);
        }
        Ok(match versions(cx, id, 1).await? {
            Some(ids) if !ids.is_empty() => Some(holds_objects(id, ids.len())),
            _ => None,
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Empties the bucket first only when `force_destroy = true` was applied;
    /// otherwise a bucket that holds anything is refused, never emptied.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let who = format!("s3_bucket {id} (stack {})", cx.stack);
        if force_destroy(applied) {
            empty(cx, id, &who).await?;
        } else {
            match versions(cx, id, 1).await? {
                None => return Ok(()),
                Some(ids) if !ids.is_empty() => {
                    return Err(ProviderError::Conflict(format!(
                        "{who}: {}",
                        holds_objects(id, ids.len())
                    )))
                }
                Some(_) => {}
            }
        }
        match got(cx.s3.delete_bucket().bucket(id).send().await, &[]) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketNotEmpty") => Err(ProviderError::Conflict(format!(
                "{who}: objects were written to the bucket while it was being deleted; {}",
                holds_objects(id, 1)
            ))),
            Err(e) => Err(at(&who, "DeleteBucket", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn f(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(f(pairs))
    }

    fn step(days: i64, class: &str) -> Value {
        map(&[
            ("days", Value::Int(days)),
            ("storage_class", Value::str(class)),
        ])
    }

    fn rule(id: &str, more: &[(&str, Value)]) -> Value {
        let mut m = f(&[("id", Value::str(id))]);
        m.extend(f(more));
        Value::Map(m)
    }

    fn lifecycle(rules: Vec<Value>) -> Vec<(&'static str, String, String)> {
        problems(&f(&[
            ("name", Value::str("ok-bucket")),
            ("lifecycle_rules", Value::List(rules)),
        ]))
    }

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in [
            "abc",
            "carebow-phi-documents",
            "logs.example.com",
            "a1-b2.c3",
            &"a".repeat(63),
        ] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "under_score",
            "-leading",
            "trailing-",
            ".dot",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.5.4",
            "xn--bucket",
            "sthree-bucket",
            "amzn-s3-demo-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
            "bucket.mrap",
            "bucket--x-s3",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        let p = problems(&f(&[("name", Value::str("Bad_Name"))]));
        assert_eq!(p[0].0, "name");
        assert!(p[0].2.contains("lowercase"), "{p:?}");
        // A name a reference supplies is checked at apply.
        assert!(problems(&f(&[("name", Value::str("${input.env}-data"))])).is_empty());
    }

    #[test]
    fn lifecycle_transitions_respect_minimum_storage_durations() {
        assert!(lifecycle(vec![rule(
            "ok",
            &[
                (
                    "transitions",
                    Value::List(vec![step(30, "STANDARD_IA"), step(60, "GLACIER")])
                ),
                ("expiration_days", Value::Int(365)),
            ]
        )])
        .is_empty());

        let p = lifecycle(vec![rule(
            "fast",
            &[("transitions", Value::List(vec![step(10, "STANDARD_IA")]))],
        )]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "lifecycle_rules");
        assert!(
            p[0].1.contains("`fast`") && p[0].1.contains("at least 30 days"),
            "{p:?}"
        );

        let p = lifecycle(vec![rule(
            "early-glacier",
            &[(
                "transitions",
                Value::List(vec![step(30, "STANDARD_IA"), step(40, "GLACIER")]),
            )],
        )]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("before STANDARD_IA's minimum"), "{p:?}");
        assert!(p[0].2.contains("day 60"), "{p:?}");

        let p = lifecycle(vec![rule(
            "expires-first",
            &[
                ("transitions", Value::List(vec![step(90, "GLACIER")])),
                ("expiration_days", Value::Int(60)),
            ],
        )]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("expiration_days (60)"), "{p:?}");

        let nc = |days, class: &str| {
            map(&[
                ("noncurrent_days", Value::Int(days)),
                ("storage_class", Value::str(class)),
            ])
        };
        let p = lifecycle(vec![rule(
            "versions",
            &[
                (
                    "noncurrent_version_transitions",
                    Value::List(vec![nc(30, "ONEZONE_IA")]),
                ),
                ("noncurrent_version_expiration_days", Value::Int(30)),
            ],
        )]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].1.contains("noncurrent_version_expiration_days"),
            "{p:?}"
        );
    }

    #[test]
    fn lifecycle_rules_need_an_action_and_their_own_id() {
        let p = lifecycle(vec![
            rule("a", &[("expiration_days", Value::Int(1))]),
            rule("a", &[("prefix", Value::str("x/"))]),
        ]);
        let msgs: Vec<&str> = p.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(p.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("used twice"), "{msgs:?}");
        assert!(msgs[1].contains("no action"), "{msgs:?}");
        let p = lifecycle(vec![rule(
            "t",
            &[
                ("tags", map(&[("k", Value::str("v"))])),
                ("abort_incomplete_multipart_upload_days", Value::Int(7)),
            ],
        )]);
        assert!(p[0].1.contains("filtered by tags"), "{p:?}");
    }

    #[test]
    fn encryption_settings_must_agree() {
        let p = problems(&f(&[
            ("sse_algorithm", Value::str("AES256")),
            ("kms_master_key_id", Value::str("k")),
            ("bucket_key_enabled", Value::Bool(true)),
        ]));
        let fields: Vec<&str> = p.iter().map(|x| x.0).collect();
        assert_eq!(fields, ["kms_master_key_id", "bucket_key_enabled"]);
        assert!(problems(&f(&[("sse_algorithm", Value::str("aws:kms"))])).is_empty());
        assert!(problems(&f(&[
            ("sse_algorithm", Value::str("aws:kms")),
            ("kms_master_key_id", Value::str("${kms_key.k.arn}")),
            ("bucket_key_enabled", Value::Bool(true)),
        ]))
        .is_empty());
        let p = problems(&f(&[("logging_target_prefix", Value::str("logs/"))]));
        assert_eq!(p[0].0, "logging_target_prefix");
        let p = problems(&f(&[("policy", Value::str("{nope"))]));
        assert_eq!(p[0].0, "policy");
    }

    #[test]
    fn key_ids_and_arns_compare_equal_and_policies_by_meaning() {
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let want = f(&[("kms_master_key_id", Value::str(arn))]);
        let live = f(&[(
            "kms_master_key_id",
            Value::str("1234abcd-12ab-34cd-56ef-1234567890ab"),
        )]);
        assert!(S3Bucket.diff(&want, &live).is_empty());
        let other = f(&[("kms_master_key_id", Value::str("ffff"))]);
        assert_eq!(S3Bucket.diff(&want, &other).len(), 1);

        let want = f(&[(
            "policy",
            Value::str(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            ),
        )]);
        let live = f(&[(
            "policy",
            Value::str(
                r#"{"Statement":{"Resource":["arn:aws:s3:::b/*"],"Action":["s3:GetObject"],"Principal":{"AWS":["arn:aws:iam::1:root"]},"Effect":"Allow"},"Version":"2012-10-17"}"#,
            ),
        )]);
        assert!(S3Bucket.diff(&want, &live).is_empty());
    }

    #[test]
    fn lifecycle_rules_round_trip_through_aws_shapes() {
        let declared = vec![
            rule(
                "archive",
                &[
                    ("prefix", Value::str("records/")),
                    (
                        "tags",
                        map(&[("class", Value::str("phi")), ("keep", Value::str("yes"))]),
                    ),
                    (
                        "transitions",
                        Value::List(vec![step(30, "STANDARD_IA"), step(90, "DEEP_ARCHIVE")]),
                    ),
                    ("expiration_days", Value::Int(2555)),
                ],
            ),
            rule(
                "versions",
                &[
                    ("enabled", Value::Bool(false)),
                    (
                        "noncurrent_version_transitions",
                        Value::List(vec![map(&[
                            ("noncurrent_days", Value::Int(30)),
                            ("storage_class", Value::str("GLACIER")),
                        ])]),
                    ),
                    ("noncurrent_version_expiration_days", Value::Int(90)),
                    ("abort_incomplete_multipart_upload_days", Value::Int(7)),
                ],
            ),
            rule(
                "one-tag",
                &[
                    ("tags", map(&[("t", Value::str("1"))])),
                    ("expiration_days", Value::Int(5)),
                ],
            ),
            rule(
                "prefix-only",
                &[
                    ("prefix", Value::str("tmp/")),
                    ("expiration_days", Value::Int(1)),
                ],
            ),
        ];
        let live: Vec<Value> = declared
            .iter()
            .map(|r| rule_fields(&aws_rule(r).unwrap()))
            .collect();
        // Declared in another order: the rules are a set.
        let mut reordered = declared.clone();
        reordered.reverse();
        let want = f(&[("lifecycle_rules", Value::List(reordered))]);
        let have = f(&[("lifecycle_rules", Value::List(live))]);
        assert!(
            S3Bucket.diff(&want, &have).is_empty(),
            "{:?}",
            S3Bucket.diff(&want, &have)
        );

        let want = f(&[(
            "lifecycle_rules",
            Value::List(vec![rule("x", &[("expiration_days", Value::Int(9))])]),
        )]);
        assert_eq!(S3Bucket.diff(&want, &have).len(), 1);
        // No rules declared and none there.
        let none = f(&[("lifecycle_rules", Value::List(vec![]))]);
        assert!(S3Bucket.diff(&none, &none).is_empty());
    }

    #[test]
    fn cors_rules_round_trip_through_aws_shapes() {
        let strs = |l: &[&str]| Value::List(l.iter().map(|s| Value::str(*s)).collect());
        let declared = vec![
            map(&[
                ("allowed_methods", strs(&["GET", "HEAD"])),
                ("allowed_origins", strs(&["https://app.example.com"])),
                ("allowed_headers", strs(&["*"])),
                ("max_age_seconds", Value::Int(3000)),
                ("id", Value::str("app")),
            ]),
            map(&[
                ("allowed_methods", strs(&["PUT"])),
                ("allowed_origins", strs(&["*"])),
            ]),
        ];
        let live: Vec<Value> = declared
            .iter()
            .map(|r| cors_fields(&aws_cors(r).unwrap()))
            .collect();
        let want = f(&[("cors_rules", Value::List(declared))]);
        let have = f(&[("cors_rules", Value::List(live))]);
        assert!(
            S3Bucket.diff(&want, &have).is_empty(),
            "{:?}",
            S3Bucket.diff(&want, &have)
        );
    }

    #[test]
    fn only_bucket_arns_name_buckets() {
        assert_eq!(bucket_of("arn:aws:s3:::my-bucket"), Some("my-bucket"));
        assert_eq!(bucket_of("arn:aws-us-gov:s3:::b"), Some("b"));
        assert_eq!(bucket_of("arn:aws:s3:us-east-1:1:accesspoint/x"), None);
        assert_eq!(bucket_of("arn:aws:s3:::b/key"), None);
    }

    #[test]
    fn the_plan_tells_when_objects_go_with_the_bucket() {
        assert!(S3Bucket.delete_note(None).is_none());
        assert!(S3Bucket
            .delete_note(Some(&f(&[("force_destroy", Value::Bool(false))])))
            .is_none());
        let note = S3Bucket
            .delete_note(Some(&f(&[("force_destroy", Value::Bool(true))])))
            .unwrap();
        assert!(note.contains("every object and version"), "{note}");
    }
}
