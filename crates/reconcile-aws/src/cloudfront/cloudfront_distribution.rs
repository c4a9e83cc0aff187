//! `cloudfront_distribution`: a CloudFront web distribution with its origins
//! and its default cache behaviour inline, HTTPS to viewers, a price class.
//!
//! CloudFront takes minutes to deploy a change to its edge locations: a
//! create and an update wait until the distribution is `Deployed`, reporting
//! its status meanwhile. A distribution must be disabled, and that deployed,
//! before CloudFront lets it be deleted: a delete disables it, waits, then
//! deletes with the ETag the wait read last. An update reads the live
//! configuration and its ETag, changes only what the stack manages, and
//! sends it back with that ETag, so settings made elsewhere (aliases, a
//! certificate, cache behaviours for paths) are kept.

use crate::kit::duration::check_duration;
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{bool_of, changes_field, fields_of, str_of};
use crate::kit::tags::{own_tags, read_each, stack_address, stack_resources_of_type};
use crate::kit::wait::{wait, Backoff, Progress, Timeouts, Wait};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError, StatusSink};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    AllowedMethods, CachedMethods, CustomOriginConfig, DefaultCacheBehavior, Distribution,
    DistributionConfig, DistributionConfigWithTags, Method, Origin, OriginProtocolPolicy, Origins,
    PriceClass, S3OriginConfig, Tag, TagKeys, Tags, ViewerCertificate, ViewerProtocolPolicy,
};
use aws_sdk_cloudfront::Client;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

pub struct CloudfrontDistribution;

pub const PRICE_CLASSES: &[&str] = &["PriceClass_All", "PriceClass_200", "PriceClass_100"];
pub const VIEWER_PROTOCOL_POLICIES: &[&str] = &["https-only", "redirect-to-https", "allow-all"];
pub const METHODS: &[&str] = &["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"];

/// The Route 53 hosted zone of every CloudFront domain name, for alias records.
pub const HOSTED_ZONE_ID: &str = "Z2FDTNDATAQYW2";

/// How long a deployment may take by default: usually minutes, sometimes much longer.
const DEFAULTS: Timeouts = Timeouts {
    create: Duration::from_secs(90 * 60),
    update: Duration::from_secs(90 * 60),
    delete: Duration::from_secs(90 * 60),
};

/// How often the wait for `Deployed` asks CloudFront.
const DEPLOY_POLL: Backoff = Backoff {
    first: Duration::from_secs(5),
    max: Duration::from_secs(30),
};

const ORIGIN_FIELDS: &[Field] = &[
    Field::new(
        "id",
        Ty::Str,
        "The origin's id in this distribution, which `target_origin_id` names.",
    )
    .required(),
    Field::new(
        "domain_name",
        Ty::Str,
        "Where CloudFront fetches from: an S3 bucket's regional endpoint \
         (`${s3_bucket.NAME.bucket_regional_domain_name}`), or a host name served over HTTPS.",
    )
    .required(),
    Field::new(
        "origin_path",
        Ty::Str,
        "A directory of the origin requests are served from, like \"/public\"; \"\" for its root.",
    )
    .default(Default::Str("")),
    Field::new(
        "origin_access_control_id",
        Ty::Str,
        "The origin access control that signs requests to an S3 origin \
         (`${cloudfront_origin_access_control.NAME.id}`). Written by every create and update, \
         but not compared with AWS (see the kind's note on the emulator).",
    ),
];

const BEHAVIOR_FIELDS: &[Field] = &[
    Field::new(
        "target_origin_id",
        Ty::Str,
        "The `id` of the origin requests go to.",
    )
    .required(),
    Field::new(
        "viewer_protocol_policy",
        Ty::Enum(VIEWER_PROTOCOL_POLICIES),
        "https-only (plain HTTP is refused), redirect-to-https, or allow-all.",
    )
    .required(),
    Field::new(
        "allowed_methods",
        Ty::List(&Ty::Enum(METHODS)),
        "The HTTP methods CloudFront passes on, compared as a set: GET and HEAD; or GET, HEAD \
         and OPTIONS; or all seven.",
    )
    .default(Default::Strs(&["GET", "HEAD"]))
    .set(),
    Field::new(
        "cached_methods",
        Ty::List(&Ty::Enum(METHODS)),
        "The methods whose answers are cached: GET and HEAD, or GET, HEAD and OPTIONS.",
    )
    .default(Default::Strs(&["GET", "HEAD"]))
    .set(),
    Field::new(
        "cache_policy_id",
        Ty::Str,
        "The cache policy: a managed one such as CachingOptimized \
         (\"658327ea-f89d-4fab-a63d-7e88639e58f6\") or CachingDisabled \
         (\"4135ea2d-6df8-44a3-9df3-4b5a84be39ad\").",
    )
    .required(),
    Field::new(
        "compress",
        Ty::Bool,
        "Compress answers for viewers that accept it.",
    )
    .default(Default::Bool(false)),
];

const TIMEOUT_FIELDS: &[Field] = &[
    Field::new(
        "create",
        Ty::Pattern(check_duration),
        "How long a create waits for `Deployed` (default \"90m\").",
    ),
    Field::new(
        "update",
        Ty::Pattern(check_duration),
        "How long an update waits for `Deployed` (default \"90m\").",
    ),
    Field::new(
        "delete",
        Ty::Pattern(check_duration),
        "How long a delete waits for the disabled distribution to be deployed (default \"90m\").",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "cloudfront_distribution",
    doc: "A CloudFront web distribution: its origins and its default cache behaviour inline, \
          viewers served with CloudFront's own certificate on its `*.cloudfront.net` name. An S3 \
          origin reads a private bucket through a `cloudfront_origin_access_control`; the \
          bucket's `s3_bucket_policy` lets `cloudfront.amazonaws.com` read on the condition \
          `AWS:SourceArn` = this distribution's `arn`. Everything is updated in place; an update \
          changes only the settings declared here and keeps the others (aliases, certificate, \
          path behaviours made elsewhere). A create and an update wait until CloudFront reports \
          the distribution `Deployed` (minutes on AWS), showing its status; a delete first \
          disables it, waits until that is deployed, then deletes it with the latest ETag, as \
          CloudFront demands. Observing costs one GetDistribution per distribution \
          (concurrently) and tags from the plan's one Resource Groups Tagging API read of the \
          whole stack (else one ListTagsForResource per distribution). The emulator differs: it \
          keeps no origin access control id on an origin (so the id is sent but never compared: \
          on AWS too, a control removed from an origin by hand is not reported as drift), deploys \
          every change at once (the waiting is tested with staged answers), accepts stale ETags \
          and deletes an enabled distribution.",
    fields: &[
        Field::new(
            "comment",
            Ty::Str,
            "A note for people, up to 128 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "enabled",
            Ty::Bool,
            "Whether the distribution serves viewers. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "price_class",
            Ty::Enum(PRICE_CLASSES),
            "The edge locations used: PriceClass_100 (North America and Europe), PriceClass_200 \
             (and most of Asia, the Middle East and Africa) or PriceClass_All. Updated in place.",
        )
        .default(Default::Str("PriceClass_All")),
        Field::new(
            "default_root_object",
            Ty::Str,
            "The object answered for the root URL, like \"index.html\"; \"\" for none. Updated \
             in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "origins",
            Ty::List(&Ty::Object(ORIGIN_FIELDS)),
            "The origins, as `[{ id = \"videos\", domain_name = \"...\", origin_access_control_id \
             = \"...\" }]`, compared as a set. Updated in place.",
        )
        .required()
        .norm(Norm::With(origins_norm))
        .set(),
        Field::new(
            "default_cache_behavior",
            Ty::Object(BEHAVIOR_FIELDS),
            "How requests that match no other behaviour are served: `{ target_origin_id = \
             \"videos\", viewer_protocol_policy = \"https-only\", cache_policy_id = \"...\" }`. \
             Updated in place.",
        )
        .required(),
        Field::new(
            "timeouts",
            Ty::Object(TIMEOUT_FIELDS),
            "Reconcile setting: how long to wait for `Deployed`, like `{ create = \"90m\" }`.",
        )
        .local(),
    ],
    attributes: &[
        ("id", "The distribution's id (`E2QWRUHAPOMQZL`)."),
        (
            "arn",
            "The distribution's ARN: what a bucket policy's `AWS:SourceArn` condition names.",
        ),
        (
            "domain_name",
            "The distribution's name, `d111111abcdef8.cloudfront.net`: where viewers go.",
        ),
        (
            "hosted_zone_id",
            "The hosted zone of CloudFront names, for a Route 53 alias record.",
        ),
    ],
    taggable: true,
};

/// Origins compared without their origin access control: the emulator keeps
/// none, and a declared one could only ever show as drift there.
fn origins_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|o| match o {
                    Value::Map(m) => {
                        let mut m = m.clone();
                        m.shift_remove("origin_access_control_id");
                        Value::Map(m)
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The sets of methods CloudFront accepts, allowed and cached.
const ALLOWED_SETS: &[&[&str]] = &[
    &["GET", "HEAD"],
    &["GET", "HEAD", "OPTIONS"],
    &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
];
const CACHED_SETS: &[&[&str]] = &[&["GET", "HEAD"], &["GET", "HEAD", "OPTIONS"]];

fn method_set(v: Option<&Value>, default: &[&str]) -> BTreeSet<String> {
    match v {
        Some(v) => v.str_list().into_iter().collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn one_of(set: &BTreeSet<String>, sets: &[&[&str]]) -> bool {
    sets.iter()
        .any(|s| s.len() == set.len() && s.iter().all(|m| set.contains(*m)))
}

fn origins_of(f: &Fields) -> Vec<&IndexMap<String, Value>> {
    f.get("origins")
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(Value::as_map).collect())
        .unwrap_or_default()
}

fn behavior_of(f: &Fields) -> Option<&IndexMap<String, Value>> {
    f.get("default_cache_behavior").and_then(Value::as_map)
}

fn known(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.contains("${"))
}

/// Problems with a distribution's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if str_of(f, "comment").is_some_and(|c| c.chars().count() > 128) {
        out.push((
            "comment",
            "the comment is longer than 128 characters".into(),
            "shorten it".into(),
        ));
    }
    if str_of(f, "default_root_object").is_some_and(|o| o.starts_with('/')) {
        out.push((
            "default_root_object",
            "the default root object starts with `/`".into(),
            "name the object without a leading slash, like \"index.html\"".into(),
        ));
    }
    let origins = origins_of(f);
    let mut ids = BTreeSet::new();
    for o in &origins {
        if let Some(id) = known(o.get("id")) {
            if !ids.insert(id.to_string()) {
                out.push((
                    "origins",
                    format!("two origins have the id \"{id}\""),
                    "give each origin its own id".into(),
                ));
            }
        }
        if let Some(p) = known(o.get("origin_path")).filter(|p| !p.is_empty()) {
            if !p.starts_with('/') || p.ends_with('/') {
                out.push((
                    "origins",
                    format!("the origin path \"{p}\" must begin with `/` and not end with one"),
                    "write it like \"/public\", or \"\" for the origin's root".into(),
                ));
            }
        }
    }
    if origins.is_empty() && f.contains_key("origins") {
        out.push((
            "origins",
            "a distribution needs at least one origin".into(),
            "declare the origin requests go to".into(),
        ));
    }
    if let Some(b) = behavior_of(f) {
        let every_id_known = origins.iter().all(|o| known(o.get("id")).is_some());
        if let Some(t) = known(b.get("target_origin_id")) {
            if every_id_known && !ids.contains(t) {
                out.push((
                    "default_cache_behavior",
                    format!("the target origin \"{t}\" is not the id of one of `origins`"),
                    "name one of the declared origins' ids".into(),
                ));
            }
        }
        let allowed = method_set(b.get("allowed_methods"), &["GET", "HEAD"]);
        let cached = method_set(b.get("cached_methods"), &["GET", "HEAD"]);
        if !one_of(&allowed, ALLOWED_SETS) {
            out.push((
                "default_cache_behavior",
                "`allowed_methods` is not a set CloudFront accepts".into(),
                "allow GET and HEAD; or GET, HEAD and OPTIONS; or all of GET, HEAD, OPTIONS, \
                 PUT, POST, PATCH and DELETE"
                    .into(),
            ));
        }
        if !one_of(&cached, CACHED_SETS) || !cached.is_subset(&allowed) {
            out.push((
                "default_cache_behavior",
                "`cached_methods` must be GET and HEAD, or GET, HEAD and OPTIONS, all of them \
                 allowed"
                    .into(),
                "cache GET and HEAD (and OPTIONS only if it is allowed)".into(),
            ));
        }
    }
    out
}

/// Whether a domain is an S3 bucket's endpoint (which takes S3OriginConfig).
fn is_s3(domain: &str) -> bool {
    domain.ends_with(".amazonaws.com") && (domain.contains(".s3.") || domain.contains(".s3-"))
}

fn methods(v: Option<&Value>) -> Vec<Method> {
    method_set(v, &["GET", "HEAD"])
        .iter()
        .map(|m| Method::from(m.as_str()))
        .collect()
}

fn invalid(a: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::InvalidInput(format!("{a}: {e}"))
}

/// The declared origins over the live ones of the same id (keeping their
/// settings reconcile does not manage).
fn origins(a: &str, f: &Fields, live: Option<&Origins>) -> Result<Origins, ProviderError> {
    let mut items = Vec::new();
    for o in origins_of(f) {
        let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
        let id = s("id");
        let domain = s("domain_name");
        let mut origin = live
            .and_then(|l| l.items.iter().find(|x| x.id == id))
            .cloned()
            .unwrap_or(
                Origin::builder()
                    .id(id)
                    .domain_name(domain)
                    .build()
                    .map_err(|e| invalid(a, e))?,
            );
        origin.domain_name = domain.to_string();
        origin.origin_path = Some(s("origin_path").to_string());
        origin.origin_access_control_id = Some(s("origin_access_control_id"))
            .filter(|o| !o.is_empty())
            .map(str::to_string);
        if is_s3(domain) {
            origin.custom_origin_config = None;
            // With an origin access control, no legacy access identity.
            let mut c = origin
                .s3_origin_config
                .take()
                .unwrap_or(S3OriginConfig::builder().origin_access_identity("").build());
            c.origin_access_identity = String::new();
            origin.s3_origin_config = Some(c);
        } else {
            origin.s3_origin_config = None;
            if origin.custom_origin_config.is_none() {
                origin.custom_origin_config = Some(
                    CustomOriginConfig::builder()
                        .http_port(80)
                        .https_port(443)
                        .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                        .build()
                        .map_err(|e| invalid(a, e))?,
                );
            }
        }
        items.push(origin);
    }
    Origins::builder()
        .quantity(items.len() as i32)
        .set_items(Some(items))
        .build()
        .map_err(|e| invalid(a, e))
}

/// The declared default cache behaviour over the live one.
fn behavior(
    a: &str,
    f: &Fields,
    live: Option<&DefaultCacheBehavior>,
) -> Result<DefaultCacheBehavior, ProviderError> {
    let b = behavior_of(f).ok_or_else(|| invalid(a, "`default_cache_behavior` is required"))?;
    let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default();
    let policy = ViewerProtocolPolicy::from(s("viewer_protocol_policy"));
    let mut d = match live {
        Some(l) => l.clone(),
        None => DefaultCacheBehavior::builder()
            .target_origin_id(s("target_origin_id"))
            .viewer_protocol_policy(policy.clone())
            .build()
            .map_err(|e| invalid(a, e))?,
    };
    d.target_origin_id = s("target_origin_id").to_string();
    d.viewer_protocol_policy = policy;
    d.cache_policy_id = Some(s("cache_policy_id").to_string());
    // A cache policy replaces the legacy forwarding and TTL settings, which
    // CloudFront refuses beside one.
    #[allow(deprecated)]
    {
        d.forwarded_values = None;
        d.min_ttl = None;
        d.default_ttl = None;
        d.max_ttl = None;
    }
    d.compress = Some(b.get("compress").and_then(Value::as_bool).unwrap_or(false));
    let allowed = methods(b.get("allowed_methods"));
    let cached = methods(b.get("cached_methods"));
    d.allowed_methods = Some(
        AllowedMethods::builder()
            .quantity(allowed.len() as i32)
            .set_items(Some(allowed))
            .cached_methods(
                CachedMethods::builder()
                    .quantity(cached.len() as i32)
                    .set_items(Some(cached))
                    .build()
                    .map_err(|e| invalid(a, e))?,
            )
            .build()
            .map_err(|e| invalid(a, e))?,
    );
    Ok(d)
}

/// `c` with every setting the stack manages made as declared.
fn declared(
    a: &str,
    f: &Fields,
    mut c: DistributionConfig,
) -> Result<DistributionConfig, ProviderError> {
    c.comment = str_of(f, "comment").unwrap_or_default().to_string();
    c.enabled = bool_of(f, "enabled").unwrap_or(true);
    c.price_class = Some(PriceClass::from(
        str_of(f, "price_class").unwrap_or("PriceClass_All"),
    ));
    c.default_root_object = Some(
        str_of(f, "default_root_object")
            .unwrap_or_default()
            .to_string(),
    );
    c.origins = Some(origins(a, f, c.origins.as_ref())?);
    c.default_cache_behavior = Some(behavior(a, f, c.default_cache_behavior.as_ref())?);
    Ok(c)
}

/// A new distribution's configuration: the declared settings, CloudFront's
/// own certificate.
fn new_config(
    a: &str,
    f: &Fields,
    caller_reference: &str,
) -> Result<DistributionConfig, ProviderError> {
    let blank = DistributionConfig::builder()
        .caller_reference(caller_reference)
        .comment("")
        .enabled(true)
        .origins(origins(a, f, None)?)
        .default_cache_behavior(behavior(a, f, None)?)
        .viewer_certificate(
            ViewerCertificate::builder()
                .cloud_front_default_certificate(true)
                .build(),
        )
        .build()
        .map_err(|e| invalid(a, e))?;
    declared(a, f, blank)
}

fn str_values(items: &[Method]) -> Value {
    Value::List(items.iter().map(|m| Value::str(m.as_str())).collect())
}

/// What a distribution's configuration says, as fields.
pub fn fields_from(c: &DistributionConfig) -> Fields {
    let origins = c
        .origins
        .as_ref()
        .map(|o| o.items.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let mut m = fields_of([
                ("id", Value::str(&o.id)),
                ("domain_name", Value::str(&o.domain_name)),
                (
                    "origin_path",
                    Value::str(o.origin_path.clone().unwrap_or_default()),
                ),
            ]);
            if let Some(oac) = o
                .origin_access_control_id
                .as_ref()
                .filter(|s| !s.is_empty())
            {
                m.insert("origin_access_control_id".into(), Value::str(oac));
            }
            Value::Map(m)
        })
        .collect();
    let mut f = fields_of([
        ("comment", Value::str(&c.comment)),
        ("enabled", Value::Bool(c.enabled)),
        (
            "price_class",
            Value::str(
                c.price_class
                    .as_ref()
                    .map_or("PriceClass_All", |p| p.as_str()),
            ),
        ),
        (
            "default_root_object",
            Value::str(c.default_root_object.clone().unwrap_or_default()),
        ),
        ("origins", Value::List(origins)),
    ]);
    if let Some(d) = &c.default_cache_behavior {
        let (allowed, cached) = match &d.allowed_methods {
            Some(m) => (
                str_values(&m.items),
                m.cached_methods
                    .as_ref()
                    .map_or(Value::List(vec![]), |c| str_values(&c.items)),
            ),
            None => (Value::List(vec![]), Value::List(vec![])),
        };
        let mut b = fields_of([
            ("target_origin_id", Value::str(&d.target_origin_id)),
            (
                "viewer_protocol_policy",
                Value::str(d.viewer_protocol_policy.as_str()),
            ),
            ("allowed_methods", allowed),
            ("cached_methods", cached),
            ("compress", Value::Bool(d.compress.unwrap_or(false))),
        ]);
        if let Some(p) = d.cache_policy_id.as_ref().filter(|p| !p.is_empty()) {
            b.insert("cache_policy_id".into(), Value::str(p));
        }
        f.insert("default_cache_behavior".into(), Value::Map(b));
    }
    f
}

fn attributes(d: &Distribution) -> Fields {
    fields_of([
        ("id", Value::str(&d.id)),
        ("arn", Value::str(&d.arn)),
        ("domain_name", Value::str(&d.domain_name)),
        ("hosted_zone_id", Value::str(HOSTED_ZONE_ID)),
    ])
}

fn aws_tags(a: &str, tags: &IndexMap<String, String>) -> Result<Tags, ProviderError> {
    let items = tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid(a, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tags::builder().set_items(Some(items)).build())
}

/// A distribution's tags with CloudFront's own call; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let out = unless_gone(
        cx.cloudfront
            .list_tags_for_resource()
            .resource(arn)
            .send()
            .await,
    )?;
    Ok(out.map(|o| {
        own_tags(
            o.tags
                .and_then(|t| t.items)
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default())),
        )
    }))
}

/// One distribution by id, tags included; `None` when it is gone.
async fn read(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(out) = unless_gone(cx.cloudfront.get_distribution().id(id).send().await)? else {
        return Ok(None);
    };
    let Some(d) = out.distribution else {
        return Ok(None);
    };
    let fields = d
        .distribution_config
        .as_ref()
        .map(fields_from)
        .unwrap_or_default();
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, id, &d.arn).await {
        Some(t) => t,
        None => match list_tags(cx, &d.arn).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    Ok(Some(Observed {
        id: d.id.clone(),
        fields,
        attributes: attributes(&d),
        tags,
    }))
}

/// The id at the end of a distribution's ARN.
fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Waits until CloudFront reports the distribution `Deployed`, reporting each
/// new status; answers the ETag the last look read (`None`: the distribution
/// is gone).
pub async fn wait_deployed(
    cf: &Client,
    status: &StatusSink,
    address: &str,
    id: &str,
    phase: &'static str,
    timeout: Duration,
    backoff: Backoff,
) -> Result<Option<String>, ProviderError> {
    let w = Wait {
        address,
        phase,
        timeout,
        backoff,
        status,
        when_failed: "look at the distribution in the CloudFront console",
        when_timed_out: "CloudFront carries on deploying it",
    };
    let etag: Mutex<Option<String>> = Mutex::new(None);
    wait(&w, || async {
        let out = unless_gone(cf.get_distribution().id(id).send().await)
            .map_err(|e| at(address, "GetDistribution", e))?;
        let Some(out) = out else {
            *etag.lock().expect("etag") = None;
            return Ok(Progress::Done("deleted".into()));
        };
        *etag.lock().expect("etag") = out.e_tag.clone();
        let s = out.distribution.map(|d| d.status).unwrap_or_default();
        Ok(if s == "Deployed" {
            Progress::Done(s)
        } else {
            Progress::Pending(format!(
                "{s}: CloudFront is deploying it to its edge locations"
            ))
        })
    })
    .await?;
    Ok(etag.into_inner().expect("etag"))
}

/// Disables the distribution if it is enabled, waits until CloudFront has
/// deployed that, then deletes it with the ETag read last: CloudFront deletes
/// only a disabled, deployed distribution, and only at its latest ETag.
pub async fn disable_and_delete(
    cf: &Client,
    status: &StatusSink,
    address: &str,
    id: &str,
    timeout: Duration,
    backoff: Backoff,
) -> Result<(), ProviderError> {
    let Some(out) = unless_gone(cf.get_distribution_config().id(id).send().await)
        .map_err(|e| at(address, "GetDistributionConfig", e))?
    else {
        return Ok(());
    };
    let Some(mut config) = out.distribution_config else {
        return Ok(());
    };
    if config.enabled {
        config.enabled = false;
        status.report(address, "disabling before delete");
        let disabled = unless_gone(
            cf.update_distribution()
                .id(id)
                .set_if_match(out.e_tag)
                .distribution_config(config)
                .send()
                .await,
        )
        .map_err(|e| at(address, "UpdateDistribution", e))?;
        if disabled.is_none() {
            return Ok(());
        }
    }
    let Some(etag) = wait_deployed(cf, status, address, id, "delete", timeout, backoff).await?
    else {
        return Ok(());
    };
    gone_is_done(cf.delete_distribution().id(id).if_match(etag).send().await)
        .map_err(|e| at(address, "DeleteDistribution", e))
}

impl CloudfrontDistribution {
    async fn deployed(
        &self,
        cx: &Cx,
        a: &str,
        id: &str,
        phase: &'static str,
        f: &Fields,
    ) -> Result<(), ProviderError> {
        let t = Timeouts::of(a, Some(f), DEFAULTS)?;
        let timeout = match phase {
            "create" => t.create,
            _ => t.update,
        };
        wait_deployed(
            &cx.cloudfront,
            &cx.status,
            a,
            id,
            phase,
            timeout,
            DEPLOY_POLL,
        )
        .await?;
        Ok(())
    }

    async fn read_back(
        &self,
        cx: &Cx,
        a: &str,
        id: &str,
        want: &Desired<'_>,
    ) -> Result<Observed, ProviderError> {
        let d = cx
            .cloudfront
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| at(a, "GetDistribution", e.into()))?
            .distribution
            .ok_or_else(|| {
                ProviderError::Other(format!("{a}: CloudFront answered no distribution"))
            })?;
        Ok(Observed {
            id: id.to_string(),
            fields: want.fields.clone(),
            attributes: attributes(&d),
            tags: want.tags.clone(),
        })
    }
}

#[async_trait]
impl Provider for CloudfrontDistribution {
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
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads =
            stack_resources_of_type(cx, "cloudfront:distribution")
                .await?
                .into_iter()
                .filter_map(|(arn, tags)| {
                    let address = stack_address(cx, &tags)?;
                    (addresses.is_empty() || addresses.contains(&address)).then_some((arn, address))
                })
                .map(|(arn, address)| async move {
                    Ok(read(cx, id_of(&arn)).await?.map(|o| (address, o)))
                })
                .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        crate::kit::fields::refuse(a, problems(f))?;
        Timeouts::of(a, Some(f), DEFAULTS)?;
        // The idempotency token as caller reference: a retried create is
        // refused as a duplicate instead of making a second distribution.
        let config = new_config(a, f, want.token)?;
        let out = cx
            .cloudfront
            .create_distribution_with_tags()
            .distribution_config_with_tags(
                DistributionConfigWithTags::builder()
                    .distribution_config(config)
                    .tags(aws_tags(a, want.tags)?)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| at(a, "CreateDistributionWithTags", e.into()))?;
        let id = out
            .distribution
            .map(|d| d.id)
            .ok_or_else(|| ProviderError::Other(format!("{a}: CloudFront answered no id")))?;
        self.deployed(cx, a, &id, "create", f).await?;
        self.read_back(cx, a, &id, want).await
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        let id = live.id.as_str();
        crate::kit::fields::refuse(a, problems(f))?;
        let config_changed = changes
            .iter()
            .any(|c| c.field != "tags" && c.field != "timeouts");
        if config_changed {
            let out = cx
                .cloudfront
                .get_distribution_config()
                .id(id)
                .send()
                .await
                .map_err(|e| at(a, "GetDistributionConfig", e.into()))?;
            let current = out.distribution_config.ok_or_else(|| {
                ProviderError::Other(format!("{a}: CloudFront answered no configuration"))
            })?;
            cx.cloudfront
                .update_distribution()
                .id(id)
                .set_if_match(out.e_tag)
                .distribution_config(declared(a, f, current)?)
                .send()
                .await
                .map_err(|e| at(a, "UpdateDistribution", e.into()))?;
        }
        if changes_field(changes, "tags") {
            let arn = live
                .attributes
                .get("arn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let cf = &cx.cloudfront;
            crate::kit::tags::sync(
                &live.tags,
                want.tags,
                |stale: Vec<String>| {
                    let arn = arn.clone();
                    async move {
                        cf.untag_resource()
                            .resource(arn)
                            .tag_keys(TagKeys::builder().set_items(Some(stale)).build())
                            .send()
                            .await
                            .map(drop)
                            .map_err(|e| at(a, "UntagResource", e.into()))
                    }
                },
                |set: IndexMap<String, String>| {
                    let arn = arn.clone();
                    async move {
                        cf.tag_resource()
                            .resource(arn)
                            .tags(aws_tags(a, &set)?)
                            .send()
                            .await
                            .map(drop)
                            .map_err(|e| at(a, "TagResource", e.into()))
                    }
                },
            )
            .await?;
        }
        if config_changed {
            self.deployed(cx, a, id, "update", f).await?;
        }
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let a = format!("cloudfront_distribution {id} (stack {})", cx.stack);
        let t = Timeouts::of(&a, applied, DEFAULTS)?;
        disable_and_delete(&cx.cloudfront, &cx.status, &a, id, t.delete, DEPLOY_POLL).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    const OAC: &str = "E2QWRUHAPOMQZL";
    const OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";

    fn origin(id: &str, domain: &str, oac: Option<&str>) -> Value {
        let mut m = fields_of([("id", Value::str(id)), ("domain_name", Value::str(domain))]);
        if let Some(o) = oac {
            m.insert("origin_access_control_id".into(), Value::str(o));
        }
        Value::Map(m)
    }

    fn declared_fields() -> Fields {
        fields_of([
            ("price_class", Value::str("PriceClass_100")),
            (
                "origins",
                Value::List(vec![origin(
                    "videos",
                    "videos.s3.us-east-1.amazonaws.com",
                    Some(OAC),
                )]),
            ),
            (
                "default_cache_behavior",
                Value::Map(fields_of([
                    ("target_origin_id", Value::str("videos")),
                    ("viewer_protocol_policy", Value::str("https-only")),
                    ("cache_policy_id", Value::str(OPTIMIZED)),
                ])),
            ),
        ])
    }

    #[test]
    fn the_configuration_sent_reads_back_as_declared() {
        let want = declared_fields();
        let c = new_config("d.x", &want, "tok").unwrap();
        let o = &c.origins.as_ref().unwrap().items[0];
        assert_eq!(o.origin_access_control_id.as_deref(), Some(OAC));
        assert_eq!(
            o.s3_origin_config.as_ref().unwrap().origin_access_identity,
            ""
        );
        assert_eq!(c.price_class, Some(PriceClass::PriceClass100));
        let live = fields_from(&c);
        let changes = CloudfrontDistribution.diff(&want, &live);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn an_origin_without_its_access_control_is_no_drift_but_a_changed_domain_is() {
        let want = declared_fields();
        let mut live = fields_from(&new_config("d.x", &want, "tok").unwrap());
        live.insert(
            "origins".into(),
            Value::List(vec![origin(
                "videos",
                "videos.s3.us-east-1.amazonaws.com",
                None,
            )]),
        );
        assert!(CloudfrontDistribution.diff(&want, &live).is_empty());
        live.insert(
            "origins".into(),
            Value::List(vec![origin(
                "videos",
                "other.s3.us-east-1.amazonaws.com",
                None,
            )]),
        );
        let c = CloudfrontDistribution.diff(&want, &live);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "origins");
        assert!(!c[0].forces_replace);
    }

    #[test]
    fn an_update_keeps_what_the_stack_does_not_manage() {
        let want = declared_fields();
        let mut live = new_config("d.x", &want, "tok").unwrap();
        live.origins.as_mut().unwrap().items[0].connection_attempts = Some(1);
        live.http_version = Some(aws_sdk_cloudfront::types::HttpVersion::Http3);
        let mut changed = want.clone();
        changed.insert("comment".into(), Value::str("videos"));
        let c = declared("d.x", &changed, live).unwrap();
        assert_eq!(c.comment, "videos");
        assert_eq!(c.origins.unwrap().items[0].connection_attempts, Some(1));
        assert_eq!(
            c.http_version,
            Some(aws_sdk_cloudfront::types::HttpVersion::Http3)
        );
        assert_eq!(c.caller_reference, "tok");
    }

    #[test]
    fn validation() {
        assert!(problems(&declared_fields()).is_empty());
        let mut f = declared_fields();
        f.insert(
            "default_cache_behavior".into(),
            Value::Map(fields_of([
                ("target_origin_id", Value::str("elsewhere")),
                ("viewer_protocol_policy", Value::str("https-only")),
                ("cache_policy_id", Value::str(OPTIMIZED)),
                ("allowed_methods", Value::List(vec![Value::str("GET")])),
            ])),
        );
        f.insert("default_root_object".into(), Value::str("/index.html"));
        let p = problems(&f);
        let fields: Vec<&str> = p.iter().map(|x| x.0).collect();
        assert_eq!(
            fields,
            [
                "default_root_object",
                "default_cache_behavior",
                "default_cache_behavior",
                "default_cache_behavior"
            ],
            "{p:?}"
        );
        assert!(is_s3("videos.s3.us-east-1.amazonaws.com"));
        assert!(!is_s3("api.example.com"));
    }

    mod waiting {
        use super::super::*;
        use aws_sdk_cloudfront::operation::delete_distribution::DeleteDistributionOutput;
        use aws_sdk_cloudfront::operation::get_distribution::GetDistributionOutput;
        use aws_sdk_cloudfront::operation::get_distribution_config::GetDistributionConfigOutput;
        use aws_sdk_cloudfront::operation::update_distribution::UpdateDistributionOutput;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use std::sync::{Arc, Mutex};

        const ID: &str = "E1DIST";

        const FAST: Backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
        };

        fn got(status: &str, etag: &str) -> GetDistributionOutput {
            GetDistributionOutput::builder()
                .distribution(
                    Distribution::builder()
                        .id(ID)
                        .arn(format!(
                            "arn:aws:cloudfront::123456789012:distribution/{ID}"
                        ))
                        .status(status)
                        .last_modified_time(aws_smithy_types::DateTime::from_secs(0))
                        .in_progress_invalidation_batches(0)
                        .domain_name("d1.cloudfront.net")
                        .build()
                        .unwrap(),
                )
                .e_tag(etag)
                .build()
        }

        fn recorder() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let sink = StatusSink::new(move |_, st| s.lock().unwrap().push(st.to_string()));
            (sink, seen)
        }

        fn config(enabled: bool) -> DistributionConfig {
            let mut c = new_config("d.x", &super::declared_fields(), "tok").unwrap();
            c.enabled = enabled;
            c
        }

        /// The emulator deploys at once; CloudFront takes minutes, as staged here.
        #[tokio::test]
        async fn waits_while_in_progress_reporting_each_status_once() {
            let get = mock!(Client::get_distribution)
                .sequence()
                .output(|| got("InProgress", "E1"))
                .times(2)
                .output(|| got("Deployed", "E1"))
                .build();
            let cf = mock_client!(aws_sdk_cloudfront, RuleMode::Sequential, [&get]);
            let (sink, seen) = recorder();
            let etag = wait_deployed(
                &cf,
                &sink,
                "d.x",
                ID,
                "create",
                Duration::from_secs(10),
                FAST,
            )
            .await
            .unwrap();
            assert_eq!(etag.as_deref(), Some("E1"));
            assert_eq!(get.num_calls(), 3);
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 2, "{seen:?}");
            assert!(seen[0].starts_with("InProgress"), "{seen:?}");
            assert_eq!(seen[1], "Deployed");
        }

        #[tokio::test]
        async fn a_deployment_that_never_ends_times_out_naming_the_setting() {
            let get = mock!(Client::get_distribution).then_output(|| got("InProgress", "E1"));
            let cf = mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&get]);
            let (sink, _) = recorder();
            let e = wait_deployed(
                &cf,
                &sink,
                "d.x",
                ID,
                "update",
                Duration::from_millis(20),
                FAST,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("timed out") && e.contains("timeouts.update"),
                "{e}"
            );
        }

        /// Disable (with the ETag read), wait through InProgress, then delete
        /// with the ETag of the last look, in that order.
        #[tokio::test]
        async fn a_delete_disables_waits_then_deletes_with_the_latest_etag() {
            let log = Arc::new(Mutex::new(Vec::<String>::new()));
            let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
            let get_config = mock!(Client::get_distribution_config).then_output(|| {
                GetDistributionConfigOutput::builder()
                    .distribution_config(config(true))
                    .e_tag("E1")
                    .build()
            });
            let update = mock!(Client::update_distribution)
                .match_requests(move |r| {
                    let off = r.distribution_config().is_some_and(|c| !c.enabled);
                    l1.lock()
                        .unwrap()
                        .push(format!("update {:?} disabled={off}", r.if_match()));
                    true
                })
                .then_output(|| UpdateDistributionOutput::builder().e_tag("E2").build());
            let get = mock!(Client::get_distribution)
                .match_requests(move |_| {
                    l2.lock().unwrap().push("get".into());
                    true
                })
                .sequence()
                .output(|| got("InProgress", "E2"))
                .output(|| got("Deployed", "E3"))
                .build();
            let delete = mock!(Client::delete_distribution)
                .match_requests(move |r| {
                    l3.lock()
                        .unwrap()
                        .push(format!("delete {:?}", r.if_match()));
                    true
                })
                .then_output(|| DeleteDistributionOutput::builder().build());
            let cf = mock_client!(
                aws_sdk_cloudfront,
                RuleMode::MatchAny,
                [&get_config, &update, &get, &delete]
            );
            let (sink, seen) = recorder();
            disable_and_delete(&cf, &sink, "d.x", ID, Duration::from_secs(10), FAST)
                .await
                .unwrap();
            assert_eq!(
                *log.lock().unwrap(),
                [
                    "update Some(\"E1\") disabled=true",
                    "get",
                    "get",
                    "delete Some(\"E3\")"
                ]
            );
            let seen = seen.lock().unwrap();
            assert_eq!(seen[0], "disabling before delete");
            assert_eq!(seen.last().map(String::as_str), Some("Deployed"));
        }

        #[tokio::test]
        async fn a_disabled_distribution_is_deleted_once_deployed_and_a_gone_one_is_done() {
            let get_config = mock!(Client::get_distribution_config).then_output(|| {
                GetDistributionConfigOutput::builder()
                    .distribution_config(config(false))
                    .e_tag("E7")
                    .build()
            });
            let update = mock!(Client::update_distribution)
                .then_output(|| UpdateDistributionOutput::builder().build());
            let get = mock!(Client::get_distribution).then_output(|| got("Deployed", "E7"));
            let delete = mock!(Client::delete_distribution)
                .match_requests(|r| r.if_match() == Some("E7"))
                .then_output(|| DeleteDistributionOutput::builder().build());
            let cf = mock_client!(
                aws_sdk_cloudfront,
                RuleMode::MatchAny,
                [&get_config, &update, &get, &delete]
            );
            let (sink, _) = recorder();
            disable_and_delete(&cf, &sink, "d.x", ID, Duration::from_secs(10), FAST)
                .await
                .unwrap();
            assert_eq!(update.num_calls(), 0);
            assert_eq!(delete.num_calls(), 1);

            let gone = mock!(Client::get_distribution_config).then_error(|| {
                aws_sdk_cloudfront::operation::get_distribution_config::GetDistributionConfigError::generic(
                    aws_sdk_cloudfront::error::ErrorMetadata::builder()
                        .code("NoSuchDistribution")
                        .message("The specified distribution does not exist.")
                        .build(),
                )
            });
            let cf = mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&gone]);
            disable_and_delete(&cf, &sink, "d.x", ID, Duration::from_secs(10), FAST)
                .await
                .unwrap();
            assert_eq!(gone.num_calls(), 1);
        }
    }
}
