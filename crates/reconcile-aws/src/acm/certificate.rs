//! `certificate`: an ACM certificate requested with DNS (or email) validation.
//!
//! Reconcile requests the certificate and exports its validation records
//! (`domain_validation_options`, and the domain name's own record as flat
//! `validation_record_*` attributes that `route53_record`s reference);
//! putting them into DNS is a person's or a `route53_record`'s job, so a
//! create waits for ISSUED only with `wait_for_validation`. ACM
//! describes one certificate per call: observing costs one `ListCertificates`
//! per page (which tells which certificates still exist) plus one
//! `DescribeCertificate` per certificate; tags come from the observe pass's
//! stack tag index, or cost one `ListTagsForCertificate` per certificate the
//! index does not list.

use crate::elbv2::{diagnostics, fields, observation, Problem};
use crate::kit::adopt::is_ours;
use crate::kit::each;
use crate::kit::error::at;
use crate::kit::error::unless_gone as found;
use crate::kit::fields::str_of;
use crate::kit::tags::stack_address;
use crate::kit::wait::{wait, Backoff, Progress, Timeouts, Wait};
use crate::kit::{Cx, Desired, Provider, ProviderError, StatusSink};
use async_trait::async_trait;
use aws_sdk_acm::types::{
    CertificateDetail, CertificateStatus, Filters, KeyAlgorithm, Tag, ValidationMethod,
};
use aws_smithy_types::date_time::Format::DateTime;
use indexmap::IndexMap;
use reconcile_core::diff::normal_form;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub struct Certificate;

pub const KEY_ALGORITHMS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
];

/// How long a create waits for ACM to publish the DNS validation records.
const RECORDS_WAIT: Duration = Duration::from_secs(60);

/// How long `wait_for_validation` waits for ISSUED by default: Terraform's
/// `aws_acm_certificate_validation` default.
const DEFAULTS: Timeouts = Timeouts {
    create: Duration::from_secs(75 * 60),
    update: Duration::from_secs(75 * 60),
    delete: Duration::from_secs(75 * 60),
};

/// How often the wait for ISSUED asks ACM.
const ISSUED_POLL: Backoff = Backoff {
    first: Duration::from_secs(5),
    max: Duration::from_secs(30),
};

const TIMEOUT_FIELDS: &[Field] = &[Field::new(
    "create",
    Ty::Pattern(crate::kit::duration::check_duration),
    "How long `wait_for_validation` waits for ISSUED (default \"75m\").",
)];

pub static SCHEMA: Schema = Schema {
    kind: "certificate",
    doc: "A public ACM certificate. Reconcile requests it and exports the DNS records that \
          validate it: `domain_validation_options` lists them all, and `validation_record_name`, \
          `validation_record_type` and `validation_record_value` hold the domain name's own, \
          for a `route53_record` to reference (`name = \"${certificate.NAME.validation_record_name}\"`; \
          references name one attribute, not an element of a list). A create does not wait for \
          ISSUED unless `wait_for_validation = true`, since validation needs those records in \
          DNS: with it, the apply waits (reporting ACM's status) until ACM issues the \
          certificate, fails at once when ACM reports FAILED (or another status it will not \
          leave) and after `timeouts.create` (75m by default) otherwise. `validate` refuses \
          `wait_for_validation` on a certificate whose validation records are `route53_record`s \
          of the same stack: they can only be made after the certificate, so the wait would \
          never end (let the HTTPS listener's apply come after the records instead). The \
          emulator issues every requested certificate a fixed time after the request \
          (MOTO_ACM_VALIDATION_WAIT, 60 s by default) whatever DNS holds, and never fails one: \
          FAILED and the timeout are tested with ACM's answers staged in process. \
          Tags are updated in place; every other field replaces the certificate. Observing costs one ListCertificates per page plus one \
          DescribeCertificate per certificate (ACM describes one certificate per call); tags \
          come from the plan's one Resource Groups Tagging API read of the whole stack \
          (GetResources, 100 resources a page, shared by every kind), or cost one \
          ListTagsForCertificate per certificate that read does not list. State tracks it by \
          its ARN.",
    fields: &[
        Field::new(
            "domain_name",
            Ty::Pattern(check_domain),
            "The fully qualified name to certify, like \"auth.example.com\" (\"*.example.com\" for \
             a wildcard). Changing it replaces the certificate.",
        )
        .required()
        .force_new(),
        Field::new(
            "subject_alternative_names",
            Ty::List(&Ty::Pattern(check_domain)),
            "More names the certificate covers (domain_name itself need not be repeated), \
             compared as a set. Changing them replaces the certificate.",
        )
        .norm(Norm::With(sans_norm))
        .set()
        .force_new(),
        Field::new(
            "validation_method",
            Ty::Enum(&["DNS", "EMAIL"]),
            "How ownership of the names is proven. Changing it replaces the certificate.",
        )
        .default(Default::Str("DNS"))
        .force_new(),
        Field::new(
            "key_algorithm",
            Ty::Enum(KEY_ALGORITHMS),
            "The key's algorithm and size. Changing it replaces the certificate.",
        )
        .default(Default::Str("RSA_2048"))
        .force_new(),
        Field::new(
            "wait_for_validation",
            Ty::Bool,
            "Reconcile setting: a create waits until ACM has issued the certificate (its \
             validation records in DNS), so that what uses it comes after.",
        )
        .default(Default::Bool(false))
        .local(),
        Field::new(
            "timeouts",
            Ty::Object(TIMEOUT_FIELDS),
            "Reconcile setting: how long `wait_for_validation` waits, like `{ create = \"75m\" }`.",
        )
        .local(),
    ],
    attributes: &[
        ("id", "The certificate's ARN."),
        ("arn", "The certificate's ARN, as an HTTPS listener takes it."),
        (
            "status",
            "ACM's status when last read: PENDING_VALIDATION until the DNS records are in place, then ISSUED.",
        ),
        (
            "domain_validation_options",
            "The DNS records that validate the certificate, one table per name: domain_name, \
             resource_record_name, resource_record_type, resource_record_value.",
        ),
        (
            "not_after",
            "When the certificate expires (RFC 3339); empty until it is issued.",
        ),
        (
            "validation_record_name",
            "The name of the DNS record that validates `domain_name` (empty for EMAIL validation).",
        ),
        (
            "validation_record_type",
            "The type of that record (CNAME).",
        ),
        (
            "validation_record_value",
            "The value of that record.",
        ),
    ],
    taggable: true,
};

/// A DNS name ACM can certify: lowercase labels, an optional leading `*.`.
pub fn check_domain(s: &str) -> Result<(), String> {
    let name = s.strip_prefix("*.").unwrap_or(s);
    let ok = !name.is_empty()
        && s.len() <= 253
        && name.contains('.')
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a domain name ACM can certify; write it in lowercase like \"auth.example.com\" or \"*.example.com\""
        ))
    }
}

/// ACM's idempotency token is 1 to 32 word characters: the apply's token (a
/// UUID) without its dashes, or a stable 128-bit FNV-1a hash of anything longer.
pub fn idempotency_token(token: &str) -> String {
    let word: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !word.is_empty() && word.len() <= 32 {
        return word;
    }
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in token.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{h:032x}")
}

/// The alternative names without the domain name itself, which ACM always lists too.
fn extra_names(domain: Option<&str>, names: &[Value]) -> Value {
    Value::List(
        names
            .iter()
            .filter(|n| n.as_str().is_none() || n.as_str() != domain)
            .cloned()
            .collect(),
    )
}

/// The alternative names as ACM reports them: without the domain name.
fn sans_norm(v: &Value, parent: &Fields) -> Value {
    match v {
        Value::List(names) => extra_names(str_of(parent, "domain_name"), names),
        other => other.clone(),
    }
}

fn key_algorithm(k: &KeyAlgorithm) -> String {
    // ACM's documentation has written these with dashes ("RSA-2048") at times.
    k.as_str().replace('-', "_")
}

fn observed(d: &CertificateDetail, tags: IndexMap<String, String>) -> Option<Observed> {
    let arn = d.certificate_arn()?;
    let domain = d.domain_name().unwrap_or_default();
    let mut sans: Vec<Value> = d
        .subject_alternative_names()
        .iter()
        .map(Value::str)
        .collect();
    sans.sort_by_key(|v| v.to_string());
    let options = d.domain_validation_options();
    let method = options.iter().find_map(|o| o.validation_method());
    let f = fields([
        ("domain_name", Value::str(domain)),
        (
            "subject_alternative_names",
            extra_names(Some(domain), &sans),
        ),
        (
            "validation_method",
            Value::str(method.map_or("", |m| m.as_str())),
        ),
        (
            "key_algorithm",
            Value::str(d.key_algorithm().map(key_algorithm).unwrap_or_default()),
        ),
    ]);
    let mut records: Vec<(String, Value)> = options
        .iter()
        .map(|o| {
            let rr = o.resource_record();
            let m = fields([
                ("domain_name", Value::str(o.domain_name())),
                (
                    "resource_record_name",
                    Value::str(rr.map_or("", |r| r.name())),
                ),
                (
                    "resource_record_type",
                    Value::str(rr.map_or("", |r| r.r#type().as_str())),
                ),
                (
                    "resource_record_value",
                    Value::str(rr.map_or("", |r| r.value())),
                ),
            ]);
            (o.domain_name().to_string(), Value::Map(m))
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let not_after = d.not_after().and_then(|t| t.fmt(DateTime).ok());
    let own = records
        .iter()
        .find(|(name, _)| name == domain)
        .and_then(|(_, v)| v.as_map().cloned())
        .unwrap_or_default();
    let flat = |k: &str| own.get(k).cloned().unwrap_or(Value::str(""));
    let more = [
        ("validation_record_name", flat("resource_record_name")),
        ("validation_record_type", flat("resource_record_type")),
        ("validation_record_value", flat("resource_record_value")),
        ("status", Value::str(d.status().map_or("", |s| s.as_str()))),
        (
            "domain_validation_options",
            Value::List(records.into_iter().map(|(_, v)| v).collect()),
        ),
        ("not_after", Value::str(not_after.unwrap_or_default())),
    ];
    observation(arn, f, more, tags)
}

/// Whether ACM has published every DNS validation record yet.
fn records_ready(d: &CertificateDetail) -> bool {
    d.domain_validation_options().iter().all(|o| {
        o.validation_method() != Some(&ValidationMethod::Dns) || o.resource_record().is_some()
    })
}

/// Every certificate in the region, whatever its key type (ACM lists only RSA
/// keys unless asked), as (ARN, domain name): one call per 1000.
async fn list_certificates(cx: &Cx) -> Result<Vec<(String, String)>, ProviderError> {
    let all_keys: Vec<KeyAlgorithm> = KEY_ALGORITHMS
        .iter()
        .chain(&["RSA_1024"])
        .map(|k| KeyAlgorithm::from(*k))
        .collect();
    let mut out = Vec::new();
    let mut pages = cx
        .acm
        .list_certificates()
        .includes(Filters::builder().set_key_types(Some(all_keys)).build())
        .max_items(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        out.extend(page.certificate_summary_list().iter().filter_map(|s| {
            Some((
                s.certificate_arn()?.to_string(),
                s.domain_name().unwrap_or_default().to_string(),
            ))
        }));
    }
    Ok(out)
}

async fn describe(cx: &Cx, arn: &str) -> Result<Option<CertificateDetail>, ProviderError> {
    let req = cx.acm.describe_certificate().certificate_arn(arn);
    let out = found(req.send().await.map_err(ProviderError::from_sdk))?;
    Ok(out.and_then(|o| o.certificate().cloned()))
}

/// A certificate's tags, AWS's own (`aws:*`) left out; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let req = cx.acm.list_tags_for_certificate().certificate_arn(arn);
    let Some(out) = found(req.send().await.map_err(ProviderError::from_sdk))? else {
        return Ok(None);
    };
    Ok(Some(crate::kit::tags::own_tags(
        out.tags()
            .iter()
            .map(|t| (t.key(), t.value().unwrap_or_default())),
    )))
}

/// A certificate's tags from the observe pass's stack tag index where it lists
/// them, else with ListTagsForCertificate; `None` when it is gone.
async fn tags_of(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    match crate::kit::tags::indexed(cx, SCHEMA.kind, arn, arn).await {
        Some(t) => Ok(Some(t)),
        None => list_tags(cx, arn).await,
    }
}

async fn observe_one(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(d) = describe(cx, arn).await? else {
        return Ok(None);
    };
    let Some(tags) = tags_of(cx, arn).await? else {
        return Ok(None);
    };
    Ok(observed(&d, tags))
}

fn sdk_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

async fn sync_tags(
    cx: &Cx,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
    address: &str,
) -> Result<(), ProviderError> {
    let stale: Vec<Tag> = crate::kit::tags::tag_keys_to_remove(have, want)
        .into_iter()
        .filter_map(|k| Tag::builder().value(&have[&k]).key(k).build().ok())
        .collect();
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !stale.is_empty() {
        cx.acm
            .remove_tags_from_certificate()
            .certificate_arn(arn)
            .set_tags(Some(stale))
            .send()
            .await
            .map_err(|e| {
                at(
                    address,
                    "RemoveTagsFromCertificate",
                    ProviderError::from_sdk(e),
                )
            })?;
    }
    if !changed.is_empty() {
        cx.acm
            .add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(sdk_tags(&changed)))
            .send()
            .await
            .map_err(|e| at(address, "AddTagsToCertificate", ProviderError::from_sdk(e)))?;
    }
    Ok(())
}

/// Problems in one declaration.
pub fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(Value::List(names)) = f.get("subject_alternative_names") {
        let mut seen = BTreeSet::new();
        for n in names.iter().filter_map(Value::as_str) {
            if !seen.insert(n) {
                out.push((
                    "subject_alternative_names",
                    format!("\"{n}\" is listed twice"),
                    "list each name once".into(),
                ));
            }
        }
        // ACM's default quota: 10 names besides the domain name.
        let domain = str_of(f, "domain_name");
        if seen.iter().filter(|n| Some(**n) != domain).count() > 10 {
            out.push((
                "subject_alternative_names",
                "more than 10 alternative names".into(),
                "ACM allows 10 by default; split the names, or raise the quota first".into(),
            ));
        }
    }
    out
}

#[async_trait]
impl Provider for Certificate {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut out = problems(&r.fields);
        if let Some(record) = waits_for_own_records(stack, r) {
            out.push((
                "wait_for_validation",
                format!(
                    "`{record}` takes its validation record from this certificate, so it is \
                     made after it: waiting here for ISSUED would never end"
                ),
                "remove `wait_for_validation` (the listener using the certificate then waits \
                 for nothing), or put the validation records into DNS outside this stack"
                    .into(),
            ));
        }
        diagnostics(r, out)
    }

    /// ACM holds any number of certificates for one name: the new one is always
    /// requested before the old one goes (which listeners can then move to).
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let existing: BTreeSet<String> = list_certificates(cx)
            .await?
            .into_iter()
            .map(|(arn, _)| arn)
            .collect();
        let present = ids.iter().filter(|id| existing.contains(*id));
        let calls = present.map(|arn| observe_one(cx, arn));
        let found = each(calls.collect()).await?;
        Ok(found.into_iter().map(|o| (o.id.clone(), o)).collect())
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        let calls = arns
            .iter()
            .map(|arn| async move { Ok(list_tags(cx, arn).await?.map(|t| (arn.clone(), t))) });
        Ok(Some(each(calls.collect()).await?.into_iter().collect()))
    }

    /// One ListTagsForCertificate per certificate in the region (ACM cannot
    /// search by tag) that the stack tag index does not list, then
    /// DescribeCertificate for this stack's.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let all = list_certificates(cx).await?;
        let calls = all.into_iter().map(|(arn, _)| async move {
            let Some(tags) = tags_of(cx, &arn).await? else {
                return Ok(None);
            };
            Ok(stack_address(cx, &tags)
                .filter(|a| addresses.is_empty() || addresses.contains(a))
                .map(|a| (a, arn)))
        });
        let mut out = Vec::new();
        for (address, arn) in each(calls.collect()).await? {
            if let Some(o) = observe_one(cx, &arn).await? {
                out.push((address, o));
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let f = normal_form(&SCHEMA, want.fields);
        let domain = str_of(&f, "domain_name")
            .ok_or_else(|| {
                ProviderError::InvalidInput(format!("{addr}: `domain_name` must be a known string"))
            })?
            .to_string();
        check_domain(&domain).map_err(|e| ProviderError::InvalidInput(format!("{addr}: {e}")))?;
        if let Some((field, msg, help)) = problems(want.fields).into_iter().next() {
            return Err(ProviderError::InvalidInput(format!(
                "{addr}: {field}: {msg}; {help}"
            )));
        }
        let sans: Vec<String> = f
            .get("subject_alternative_names")
            .map(Value::str_list)
            .unwrap_or_default();

        // ACM allows many certificates per name, so a twin is no error; but one
        // this stack requested for this address (an interrupted create past the
        // token's one-hour life) is adopted rather than requested again.
        // The copy this create replaces carries the same tags: never adopt it,
        // or the replacement's delete would remove the only certificate.
        for (arn, _) in list_certificates(cx)
            .await?
            .into_iter()
            .filter(|(arn, d)| *d == domain && Some(arn.as_str()) != want.replacing)
        {
            let Some(tags) = list_tags(cx, &arn).await? else {
                continue;
            };
            if is_ours(cx, &tags, addr) {
                tracing::info!(address = addr, %arn, "adopting the certificate an interrupted apply requested");
                if &tags != want.tags {
                    sync_tags(cx, &arn, &tags, want.tags, addr).await?;
                }
                return self.settle(cx, &arn, want).await;
            }
        }

        // With the apply's token, a request retried after a crash returns the
        // certificate made the first time instead of a second one.
        let mut req = cx
            .acm
            .request_certificate()
            .domain_name(&domain)
            .validation_method(ValidationMethod::from(
                str_of(&f, "validation_method").unwrap_or("DNS"),
            ))
            .key_algorithm(KeyAlgorithm::from(
                str_of(&f, "key_algorithm").unwrap_or("RSA_2048"),
            ))
            .idempotency_token(idempotency_token(want.token))
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(sdk_tags(want.tags)));
        if !sans.is_empty() {
            // ACM wants the domain name among the alternative names when any are given.
            let mut all = vec![domain.clone()];
            all.extend(sans);
            req = req.set_subject_alternative_names(Some(all));
        }
        let out = req
            .send()
            .await
            .map_err(|e| at(addr, "RequestCertificate", ProviderError::from_sdk(e)))?;
        let arn = out
            .certificate_arn()
            .ok_or_else(|| {
                ProviderError::Other(format!(
                    "{addr}: RequestCertificate answered no ARN; run plan to see whether it exists"
                ))
            })?
            .to_string();
        self.settle(cx, &arn, want).await
    }

    /// Only tags change in place; every other field replaces the certificate.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        if changes.iter().any(|c| c.field == "tags") {
            sync_tags(cx, &live.id, &live.tags, want.tags, want.address).await?;
        }
        Ok(Observed {
            tags: want.tags.clone(),
            ..live.clone()
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        match cx
            .acm
            .delete_certificate()
            .certificate_arn(id)
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e @ ProviderError::Conflict(_)) => {
                Err(ProviderError::DependencyViolation(format!(
                    "DeleteCertificate {id}: {e}; a listener or distribution still uses it: \
                     move them to another certificate first, then apply again"
                )))
            }
            Err(e) => Err(at(id, "DeleteCertificate", e)),
        }
    }
}

/// Waits until ACM reports the certificate ISSUED, reporting each new status;
/// fails at once on a status ACM will not leave by itself, and after `timeout`.
pub async fn wait_issued(
    acm: &aws_sdk_acm::Client,
    status: &StatusSink,
    address: &str,
    arn: &str,
    timeout: Duration,
    backoff: Backoff,
) -> Result<(), ProviderError> {
    let w = Wait {
        address,
        phase: "create",
        timeout,
        backoff,
        status,
        when_failed: "request a new certificate (change a replace-forcing field, or `reconcile \
                      state rm` it and apply) after fixing what ACM names",
        when_timed_out: "the certificate stays requested: put its validation records \
                         (`validation_record_*`) into the domain's DNS",
    };
    wait(&w, || async {
        let req = acm.describe_certificate().certificate_arn(arn);
        let d = req
            .send()
            .await
            .map_err(|e| at(address, "DescribeCertificate", ProviderError::from_sdk(e)))?;
        let d = d.certificate().ok_or_else(|| {
            ProviderError::NotFound(format!("{address}: certificate {arn} is gone"))
        })?;
        let s = d.status().map_or("", |s| s.as_str()).to_string();
        Ok(match d.status() {
            Some(CertificateStatus::Issued) => Progress::Done(s),
            Some(CertificateStatus::PendingValidation) | None => Progress::Pending(format!(
                "{s}: waiting for ACM to see the validation records"
            )),
            Some(_) => Progress::Failed(match d.failure_reason() {
                Some(r) => format!("ACM reports the certificate {s} ({})", r.as_str()),
                None => format!("ACM reports the certificate {s}"),
            }),
        })
    })
    .await
}

/// Whether a declared certificate waits for its validation while
/// `route53_record`s of the same stack reference it: they come after it, so
/// nothing would ever put its records into DNS.
fn waits_for_own_records(stack: &Stack, r: &Resource) -> Option<String> {
    if r.fields.get("wait_for_validation") != Some(&Value::Bool(true)) {
        return None;
    }
    let needle = format!("${{{}.", r.address);
    stack
        .resources
        .values()
        .filter(|o| o.kind == "route53_record")
        .find(|o| o.fields.values().any(|v| v.mentions(&needle)))
        .map(|o| o.address.clone())
}

impl Certificate {
    /// Reads a new certificate back and, with `wait_for_validation`, waits
    /// until ACM has issued it.
    async fn settle(
        &self,
        cx: &Cx,
        arn: &str,
        want: &Desired<'_>,
    ) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let o = self.read_back(cx, arn, addr, want.tags).await?;
        if want.fields.get("wait_for_validation") != Some(&Value::Bool(true))
            || o.attributes.get("status") == Some(&Value::str("ISSUED"))
        {
            return Ok(o);
        }
        let t = Timeouts::of(addr, Some(want.fields), DEFAULTS)?;
        wait_issued(&cx.acm, &cx.status, addr, arn, t.create, ISSUED_POLL).await?;
        self.read_back(cx, arn, addr, want.tags).await
    }

    /// Reads a new certificate back, giving ACM a short while to publish its DNS
    /// validation records (they are what a person needs next). ISSUED is not
    /// awaited: it needs those records in DNS first.
    async fn read_back(
        &self,
        cx: &Cx,
        arn: &str,
        address: &str,
        tags: &IndexMap<String, String>,
    ) -> Result<Observed, ProviderError> {
        let started = Instant::now();
        let mut pause = Duration::from_secs(1);
        loop {
            let d = describe(cx, arn).await?.ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "{address}: certificate {arn} vanished right after it was requested; run plan again"
                ))
            })?;
            if records_ready(&d) || started.elapsed() + pause > RECORDS_WAIT {
                return observed(&d, tags.clone()).ok_or_else(|| {
                    ProviderError::Other(format!("{address}: ACM described {arn} without its ARN"))
                });
            }
            cx.status
                .report(address, "waiting for ACM's DNS validation records");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;
    use aws_sdk_acm::types::{DomainValidation, RecordType, ResourceRecord};

    #[test]
    fn tokens_fit_acm() {
        let t = idempotency_token("3f2a1b9c-1d2e-4f5a-8b7c-0123456789ab");
        assert_eq!(t, "3f2a1b9c1d2e4f5a8b7c0123456789ab");
        let long = idempotency_token(&"x-".repeat(40));
        assert_eq!(long.len(), 32);
        assert!(long.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(long, idempotency_token(&"x-".repeat(40)), "stable");
        assert_ne!(long, idempotency_token(&"y-".repeat(40)));
    }

    #[test]
    fn domains() {
        assert!(check_domain("auth.example.com").is_ok());
        assert!(check_domain("*.example.com").is_ok());
        assert!(check_domain("Auth.example.com").is_err());
        assert!(check_domain("localhost").is_err());
        assert!(check_domain("a..b").is_err());
    }

    #[test]
    fn observed_fields_and_records() {
        let rr = ResourceRecord::builder()
            .name("_x.auth.example.com.")
            .r#type(RecordType::Cname)
            .value("_y.acm-validations.aws.")
            .build()
            .unwrap();
        let d = CertificateDetail::builder()
            .certificate_arn("arn:aws:acm:us-east-1:1:certificate/c")
            .domain_name("auth.example.com")
            .subject_alternative_names("www.example.com")
            .subject_alternative_names("auth.example.com")
            .key_algorithm(KeyAlgorithm::Rsa2048)
            .domain_validation_options(
                DomainValidation::builder()
                    .domain_name("auth.example.com")
                    .validation_method(ValidationMethod::Dns)
                    .resource_record(rr)
                    .build()
                    .unwrap(),
            )
            .build();
        let o = observed(&d, IndexMap::new()).unwrap();
        let want: Fields = [
            ("domain_name", Value::str("auth.example.com")),
            (
                "subject_alternative_names",
                Value::List(vec![
                    Value::str("www.example.com"),
                    Value::str("auth.example.com"),
                ]),
            ),
            ("validation_method", Value::str("DNS")),
            ("key_algorithm", Value::str("RSA_2048")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert!(
            Certificate.diff(&want, &o.fields).is_empty(),
            "{:?}",
            Certificate.diff(&want, &o.fields)
        );
        let dvo = &o.attributes["domain_validation_options"];
        let first = dvo.as_list().unwrap()[0].as_map().unwrap();
        assert_eq!(first["resource_record_type"], Value::str("CNAME"));
        assert_eq!(
            first["resource_record_name"],
            Value::str("_x.auth.example.com.")
        );
        assert!(records_ready(&d));
        assert_eq!(o.attributes["not_after"], Value::str(""));
        // The domain name's own record, flat, for references.
        assert_eq!(
            o.attributes["validation_record_name"],
            Value::str("_x.auth.example.com.")
        );
        assert_eq!(o.attributes["validation_record_type"], Value::str("CNAME"));
        assert_eq!(
            o.attributes["validation_record_value"],
            Value::str("_y.acm-validations.aws.")
        );
    }

    mod waiting {
        use super::super::*;
        use aws_sdk_acm::operation::describe_certificate::DescribeCertificateOutput;
        use aws_sdk_acm::types::FailureReason;
        use aws_sdk_acm::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use std::sync::{Arc, Mutex};

        const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/c";

        fn described(s: CertificateStatus) -> DescribeCertificateOutput {
            DescribeCertificateOutput::builder()
                .certificate(
                    CertificateDetail::builder()
                        .certificate_arn(ARN)
                        .status(s)
                        .build(),
                )
                .build()
        }

        fn failed() -> DescribeCertificateOutput {
            DescribeCertificateOutput::builder()
                .certificate(
                    CertificateDetail::builder()
                        .certificate_arn(ARN)
                        .status(CertificateStatus::Failed)
                        .failure_reason(FailureReason::CaaError)
                        .build(),
                )
                .build()
        }

        fn recorder() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let sink = StatusSink::new(move |_, st| s.lock().unwrap().push(st.to_string()));
            (sink, seen)
        }

        const FAST: Backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
        };

        /// The emulator issues after a fixed delay whatever DNS holds; ACM
        /// takes minutes once the records
        /// are in DNS, as staged here.
        #[tokio::test]
        async fn waits_through_pending_validation_until_issued() {
            let describe = mock!(Client::describe_certificate)
                .sequence()
                .output(|| described(CertificateStatus::PendingValidation))
                .times(2)
                .output(|| described(CertificateStatus::Issued))
                .build();
            let acm = mock_client!(aws_sdk_acm, RuleMode::Sequential, [&describe]);
            let (sink, seen) = recorder();
            let a = "certificate.keycloak";
            wait_issued(&acm, &sink, a, ARN, Duration::from_secs(10), FAST)
                .await
                .unwrap();
            assert_eq!(describe.num_calls(), 3);
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 2, "each new status once: {seen:?}");
            assert!(seen[0].starts_with("PENDING_VALIDATION"));
            assert_eq!(seen[1], "ISSUED");
        }

        #[tokio::test]
        async fn a_failed_certificate_ends_the_wait_at_once_saying_why() {
            let describe = mock!(Client::describe_certificate)
                .sequence()
                .output(|| described(CertificateStatus::PendingValidation))
                .output(failed)
                .build();
            let acm = mock_client!(aws_sdk_acm, RuleMode::Sequential, [&describe]);
            let (sink, _) = recorder();
            let e = wait_issued(
                &acm,
                &sink,
                "certificate.api",
                ARN,
                Duration::from_secs(10),
                FAST,
            )
            .await
            .unwrap_err()
            .to_string();
            assert_eq!(describe.num_calls(), 2);
            assert!(
                e.contains("certificate.api: ACM reports the certificate FAILED (CAA_ERROR)"),
                "{e}"
            );
        }

        #[tokio::test]
        async fn a_certificate_never_validated_times_out_naming_the_setting() {
            let describe = mock!(Client::describe_certificate)
                .then_output(|| described(CertificateStatus::PendingValidation));
            let acm = mock_client!(aws_sdk_acm, RuleMode::MatchAny, [&describe]);
            let (sink, _) = recorder();
            let e = wait_issued(
                &acm,
                &sink,
                "certificate.api",
                ARN,
                Duration::from_millis(20),
                FAST,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(describe.num_calls() >= 2);
            assert!(
                e.contains("timed out") && e.contains("timeouts.create"),
                "{e}"
            );
            assert!(e.contains("validation_record_"), "{e}");
        }

        #[test]
        fn waiting_on_records_of_the_same_stack_is_refused() {
            use crate::kit::testing::{resource, stack};
            let cert = resource(
                "certificate.auth",
                &[
                    ("domain_name", Value::str("auth.example.com")),
                    ("wait_for_validation", Value::Bool(true)),
                ],
            );
            let rec = resource(
                "route53_record.auth_validation",
                &[(
                    "name",
                    Value::str("${certificate.auth.validation_record_name}"),
                )],
            );
            let s = stack(vec![cert.clone(), rec]);
            let d = Certificate.validate(&s, &cert);
            assert_eq!(d.len(), 1, "{d:?}");
            assert!(d[0].to_string().contains("s.toml:3:1"), "{}", d[0]);
            let alone = stack(vec![cert.clone()]);
            assert!(Certificate.validate(&alone, &cert).is_empty());
        }
    }

    #[test]
    fn validation() {
        let f: Fields = [(
            "subject_alternative_names".to_string(),
            Value::List(vec![
                Value::str("a.example.com"),
                Value::str("a.example.com"),
            ]),
        )]
        .into_iter()
        .collect();
        assert!(problems(&f)[0].1.contains("twice"));
    }
}
