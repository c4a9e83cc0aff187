//! `route53_record`: one record set (name and type) of a hosted zone, with a
//! TTL and values, or an alias to a load balancer or a distribution.
//!
//! Records carry no tags. A record is this stack's when state holds it;
//! anything else in the zone (its NS and SOA, records of people or other
//! tools) is never touched, and a create that meets a record of the same name
//! and type with other values refuses rather than overwrite it. Records are
//! observed a zone at a time: one ListResourceRecordSets per page of 300
//! records, whatever the number of records the stack declares in it.

use super::{bare_zone_id, norm_name, qualify};
use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{fields_of, str_of};
use crate::kit::{each, Cx, Desired, Provider, ProviderError, SchemaDiff};
use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::value::{parse_template, Reference, TemplatePart};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, HashMap};

pub struct Route53Record;

pub const TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV"];

/// What ListResourceRecordSets answers at most per page.
const PAGE: i32 = 300;

/// The longest string inside a TXT value.
const TXT_STRING_MAX: usize = 255;

const ALIAS_FIELDS: &[Field] = &[
    Field::new(
        "name",
        Ty::Str,
        "The target's DNS name: `${load_balancer.NAME.dns_name}`, or a distribution's domain name.",
    )
    .required()
    .norm(Norm::With(name_norm)),
    Field::new(
        "zone_id",
        Ty::Str,
        "The target's own hosted zone id: `${load_balancer.NAME.zone_id}`, or Z2FDTNDATAQYW2 \
         for any CloudFront distribution.",
    )
    .required()
    .norm(Norm::With(zone_norm)),
    Field::new(
        "evaluate_target_health",
        Ty::Bool,
        "Whether Route 53 answers only while the target is healthy.",
    )
    .default(Default::Bool(false)),
];

pub static SCHEMA: Schema = Schema {
    kind: "route53_record",
    doc: "One record set of a hosted zone (a name and a type): a TTL and values, or an alias \
          to a load balancer or a CloudFront distribution. Records have no tags: a record is \
          the stack's when state holds it (or `reconcile import route53_record.NAME \
          ZONEID_NAME_TYPE` adopted it). Other records of the zone, its NS and SOA among them, \
          are never changed or deleted; destroy deletes only the stack's own. A create that \
          finds a record of the same name and type takes it when its values are the declared \
          ones (an apply interrupted after its change) and refuses otherwise, rather than \
          overwrite someone's record. Changes are Route 53 change batches: CREATE, UPSERT for \
          an update, DELETE with the live values. Observing costs one ListResourceRecordSets per \
          page of 300 records of each zone the stack has records in, however many records it \
          declares there. The name may be relative to the zone (`auth`) or fully qualified \
          (`auth.maxhealth.tech`, trailing dot optional); case and trailing dots are compared \
          as Route 53 does. TXT values are written without their quotes (`\"v=spf1 -all\"`) or, \
          for several strings, quoted (`'\"part one\" \"part two\"'`). The emulator makes \
          changes INSYNC at once, does not check alias targets, accepts a CREATE of a record \
          that exists (reconcile looks first) but refuses one that repeats an earlier CREATE of \
          a record since deleted (reconcile then UPSERTs what it found absent), and deletes a \
          record only when given the values of an earlier change exactly.",
    fields: &[
        Field::new(
            "zone_id",
            Ty::Str,
            "The hosted zone: `${route53_zone.NAME.id}`, or the id of a zone outside the stack \
             (a literal or `${input.NAME}`). Changing it replaces the record.",
        )
        .required()
        .norm(Norm::With(zone_norm))
        .force_new(),
        Field::new(
            "name",
            Ty::Str,
            "The record's name, relative to the zone (`auth`, `@` for the apex) or fully \
             qualified (`auth.maxhealth.tech`). Changing it replaces the record.",
        )
        .required()
        .norm(Norm::With(name_norm))
        .force_new(),
        Field::new(
            "type",
            Ty::Enum(TYPES),
            "A, AAAA, CNAME, TXT, MX, NS, CAA or SRV. Changing it replaces the record.",
        )
        .required()
        .norm(Norm::Case)
        .force_new(),
        Field::new(
            "ttl",
            Ty::Int,
            "Seconds resolvers may cache the answer; required with `records`, not allowed with \
             `alias`. Updated in place.",
        )
        .range(0, 2147483647),
        Field::new(
            "records",
            Ty::List(&Ty::Str),
            "The values, compared as a set: addresses for A and AAAA, a name for CNAME, \
             \"10 mail.example.com\" for MX, `0 issue \"amazon.com\"` for CAA. Updated in place.",
        )
        .norm(Norm::With(records_norm))
        .set(),
        Field::new(
            "alias",
            Ty::Object(ALIAS_FIELDS),
            "Instead of `ttl` and `records` (A and AAAA records): `{ name = \
             \"${load_balancer.web.dns_name}\", zone_id = \"${load_balancer.web.zone_id}\" }`. \
             Updated in place.",
        ),
        Field::new(
            "zone_name",
            Ty::Str,
            "Reconcile setting: the domain of a zone outside the stack, so that `validate` can \
             check the record's name offline; an apply checks it against the zone.",
        )
        .norm(Norm::With(name_norm))
        .local(),
    ],
    attributes: &[
        ("id", "ZONEID_NAME_TYPE, as `reconcile import` takes it."),
        ("fqdn", "The fully qualified name, without a trailing dot."),
        ("zone", "The zone's domain, without a trailing dot."),
    ],
    taggable: false,
};

fn name_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::str(norm_name(s)),
        other => other.clone(),
    }
}

fn zone_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::str(bare_zone_id(s)),
        other => other.clone(),
    }
}

/// A value as Route 53 compares it: names without case or trailing dot, a
/// TXT value of one string without its quotes.
pub fn norm_value(ty: &str, s: &str) -> String {
    let s = s.trim();
    match ty {
        "TXT" => match txt_strings(s) {
            Some(parts) if parts.len() == 1 => parts[0].replace("\\\"", "\""),
            _ => s.to_string(),
        },
        "CNAME" | "NS" => norm_name(s),
        "MX" | "SRV" => match s.rsplit_once(char::is_whitespace) {
            Some((head, target)) => format!("{} {}", head.trim(), norm_name(target)),
            None => norm_name(s),
        },
        _ => s.to_string(),
    }
}

fn records_norm(v: &Value, parent: &Fields) -> Value {
    let ty = str_of(parent, "type")
        .unwrap_or_default()
        .to_ascii_uppercase();
    match v {
        Value::List(l) => Value::List(
            l.iter()
                .map(|x| match x {
                    Value::Str(s) => Value::str(norm_value(&ty, s)),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The strings of a quoted TXT value (`"a" "b"`), unescaped quotes kept
/// escaped; `None` when the value is not written quoted.
pub fn txt_strings(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    if !s.starts_with('"') {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c != '"' {
            return None;
        }
        let mut cur = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cur.push('\\');
                    cur.push(chars.next()?);
                }
                '"' => {
                    closed = true;
                    break;
                }
                c => cur.push(c),
            }
        }
        if !closed {
            return None;
        }
        out.push(cur);
    }
    Some(out)
}

/// A TXT value as Route 53 takes it: quoted, unless written quoted already.
pub fn wire_value(ty: &str, s: &str) -> String {
    if ty == "TXT" && txt_strings(s).is_none() {
        format!("\"{}\"", s.replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

/// The record's id: the zone, the fully qualified name and the type, as
/// Terraform's import ids are written.
pub fn id_of(zone: &str, fqdn: &str, ty: &str) -> String {
    format!("{}_{}_{}", bare_zone_id(zone), norm_name(fqdn), ty)
}

/// (zone, fqdn, type) of an id.
pub fn parse_id(id: &str) -> Option<(String, String, String)> {
    let (zone, rest) = id.split_once('_')?;
    let (name, ty) = rest.rsplit_once('_')?;
    Some((zone.to_string(), name.to_string(), ty.to_string()))
}

/// Whether a string is a value known offline (no reference left in it).
fn literal(s: &str) -> bool {
    !s.contains("${")
}

/// The domain of the zone a declared record is in, when it is known offline:
/// its `zone_name`, or the name of the `route53_zone` its `zone_id` references.
pub fn zone_name_offline(stack: &Stack, f: &Fields) -> Option<String> {
    if let Some(z) = str_of(f, "zone_name").filter(|z| literal(z)) {
        return Some(norm_name(z));
    }
    let zid = str_of(f, "zone_id")?;
    let Ok(parts) = parse_template(zid) else {
        return None;
    };
    let [TemplatePart::Ref(Reference::Resource { kind, name, attr })] = parts.as_slice() else {
        return None;
    };
    if kind != "route53_zone" || !(attr == "id" || attr == "zone_id") {
        return None;
    }
    let zone = stack.resources.get(&format!("{kind}.{name}"))?;
    str_of(&zone.fields, "name")
        .filter(|n| literal(n))
        .map(norm_name)
}

/// Problems with a record's fields, as (field, what, what to do); `zone` is
/// the zone's domain when known.
pub fn problems(f: &Fields, zone: Option<&str>) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let ty = str_of(f, "type").unwrap_or_default().to_ascii_uppercase();
    let alias = f.get("alias").is_some();
    let records = f.get("records").and_then(Value::as_list);
    if alias {
        for k in ["ttl", "records"] {
            if f.contains_key(k) {
                out.push((
                    k,
                    format!("an alias record takes no `{k}`: Route 53 answers with the target's"),
                    format!("remove `{k}`, or remove `alias`"),
                ));
            }
        }
        if !(ty == "A" || ty == "AAAA" || ty.is_empty()) {
            out.push((
                "alias",
                format!(
                    "an alias to a load balancer or distribution is an A or AAAA record, not {ty}"
                ),
                "set `type = \"A\"`".into(),
            ));
        }
    } else {
        match records {
            None => out.push((
                "records",
                "the record has neither `records` nor an `alias`".into(),
                "declare `ttl` and `records`, or an `alias`".into(),
            )),
            Some([]) => out.push((
                "records",
                "`records` is empty".into(),
                "declare at least one value".into(),
            )),
            Some(_) if !f.contains_key("ttl") => out.push((
                "ttl",
                "a record with `records` needs a `ttl`".into(),
                "add `ttl = 300`, say".into(),
            )),
            _ => {}
        }
    }
    if let Some(l) = records {
        if ty == "CNAME" && l.len() > 1 {
            out.push((
                "records",
                format!("a CNAME record has one value, not {}", l.len()),
                "keep one".into(),
            ));
        }
        if ty == "TXT" {
            for v in l.iter().filter_map(Value::as_str).filter(|v| literal(v)) {
                let strings = txt_strings(v).unwrap_or_else(|| vec![v.to_string()]);
                if let Some(long) = strings.iter().find(|s| s.chars().count() > TXT_STRING_MAX) {
                    out.push((
                        "records",
                        format!(
                            "a TXT string of {} characters (\"{}...\"); DNS allows {TXT_STRING_MAX} per string",
                            long.chars().count(),
                            long.chars().take(20).collect::<String>()
                        ),
                        "split the value into quoted strings of up to 255 characters: '\"first part\" \"second part\"'".into(),
                    ));
                }
            }
        }
    }
    if let (Some(zone), Some(name)) = (zone, str_of(f, "name").filter(|n| literal(n))) {
        match qualify(name, zone) {
            Err(e) => out.push(("name", e, format!("records of this zone end in `.{zone}`"))),
            Ok(fqdn) if fqdn == zone && ty == "CNAME" => out.push((
                "type",
                format!("a CNAME record cannot be at the zone apex `{zone}`: the apex holds the zone's NS and SOA"),
                "use an A alias record at the apex, or a CNAME on a name below it".into(),
            )),
            Ok(_) => {}
        }
    }
    out
}

/// A live record set as fields.
pub fn fields_from(zone: &str, rr: &ResourceRecordSet) -> Fields {
    let mut f = fields_of([
        ("zone_id", Value::str(bare_zone_id(zone))),
        ("name", Value::str(norm_name(rr.name()))),
        ("type", Value::str(rr.r#type().as_str())),
    ]);
    match rr.alias_target() {
        Some(t) => {
            f.insert(
                "alias".into(),
                Value::Map(fields_of([
                    ("name", Value::str(norm_name(t.dns_name()))),
                    ("zone_id", Value::str(bare_zone_id(t.hosted_zone_id()))),
                    (
                        "evaluate_target_health",
                        Value::Bool(t.evaluate_target_health()),
                    ),
                ])),
            );
        }
        None => {
            if let Some(ttl) = rr.ttl() {
                f.insert("ttl".into(), Value::Int(ttl));
            }
            f.insert(
                "records".into(),
                Value::List(
                    rr.resource_records()
                        .iter()
                        .map(|r| Value::str(r.value()))
                        .collect(),
                ),
            );
        }
    }
    f
}

fn observation(zone: &str, apex: &str, rr: &ResourceRecordSet) -> Observed {
    let fqdn = norm_name(rr.name());
    let id = id_of(zone, &fqdn, rr.r#type().as_str());
    Observed {
        id: id.clone(),
        fields: fields_from(zone, rr),
        attributes: fields_of([
            ("id", Value::str(id)),
            ("fqdn", Value::str(fqdn)),
            ("zone", Value::str(apex)),
        ]),
        tags: indexmap::IndexMap::new(),
    }
}

/// Every record set of a zone with the zone's domain (its SOA's name), one
/// call per page of 300; `None` when the zone is gone.
async fn list_zone(
    cx: &Cx,
    zone: &str,
) -> Result<Option<(String, Vec<ResourceRecordSet>)>, ProviderError> {
    let mut all = Vec::new();
    let mut start: Option<(String, RrType)> = None;
    loop {
        let mut req = cx
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .max_items(PAGE);
        if let Some((name, ty)) = start.take() {
            req = req.start_record_name(name).start_record_type(ty);
        }
        let Some(page) = unless_gone(req.send().await)? else {
            return Ok(None);
        };
        all.extend(page.resource_record_sets().iter().cloned());
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => start = Some((n.to_string(), t.clone())),
            _ => break,
        }
    }
    let apex = all
        .iter()
        .find(|r| *r.r#type() == RrType::Soa)
        .map(|r| norm_name(r.name()))
        .unwrap_or_default();
    Ok(Some((apex, all)))
}

/// The one record set of `fqdn` and `ty` (without a set identifier), if any.
async fn read_one(
    cx: &Cx,
    zone: &str,
    fqdn: &str,
    ty: &str,
) -> Result<Option<ResourceRecordSet>, ProviderError> {
    let out = cx
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(fqdn)
        .start_record_type(RrType::from(ty))
        .max_items(1)
        .send()
        .await;
    let Some(out) = unless_gone(out)? else {
        return Ok(None);
    };
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| {
            norm_name(r.name()) == norm_name(fqdn)
                && r.r#type().as_str() == ty
                && r.set_identifier().is_none()
        })
        .cloned())
}

/// The zone's domain by GetHostedZone.
async fn zone_domain(cx: &Cx, a: &str, zone: &str) -> Result<String, ProviderError> {
    let out = cx.route53.get_hosted_zone().id(zone).send().await;
    let out = unless_gone(out).map_err(|e| at(a, "GetHostedZone", e))?;
    let name = out
        .as_ref()
        .and_then(|o| o.hosted_zone())
        .map(|z| norm_name(z.name()));
    name.ok_or_else(|| {
        ProviderError::NotFound(format!("{a}: the hosted zone `{zone}` does not exist"))
    })
}

/// The record set the declared fields describe.
fn record_set(fqdn: &str, f: &Fields) -> Result<ResourceRecordSet, ProviderError> {
    let ty = str_of(f, "type").unwrap_or_default().to_ascii_uppercase();
    // Sent without a trailing dot, as written: Route 53 answers it with one.
    let mut b = ResourceRecordSet::builder()
        .name(fqdn)
        .r#type(RrType::from(ty.as_str()));
    if let Some(alias) = f.get("alias").and_then(Value::as_map) {
        let t = AliasTarget::builder()
            .dns_name(
                alias
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .hosted_zone_id(bare_zone_id(
                alias
                    .get("zone_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ))
            .evaluate_target_health(
                alias
                    .get("evaluate_target_health")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
            .build()
            .map_err(|e| ProviderError::InvalidInput(e.to_string()))?;
        b = b.alias_target(t);
    } else {
        if let Some(ttl) = f.get("ttl").and_then(Value::as_int) {
            b = b.ttl(ttl);
        }
        for v in f.get("records").map(Value::str_list).unwrap_or_default() {
            b = b.resource_records(
                ResourceRecord::builder()
                    .value(wire_value(&ty, &v))
                    .build()
                    .map_err(|e| ProviderError::InvalidInput(e.to_string()))?,
            );
        }
    }
    b.build()
        .map_err(|e| ProviderError::InvalidInput(e.to_string()))
}

async fn change(
    cx: &Cx,
    a: &str,
    zone: &str,
    action: ChangeAction,
    rr: ResourceRecordSet,
) -> Result<(), ProviderError> {
    let c = Change::builder()
        .action(action)
        .resource_record_set(rr)
        .build()
        .map_err(|e| ProviderError::InvalidInput(e.to_string()))?;
    let batch = ChangeBatch::builder()
        .changes(c)
        .build()
        .map_err(|e| ProviderError::InvalidInput(e.to_string()))?;
    cx.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map(drop)
        .map_err(|e| at(a, "ChangeResourceRecordSets", e.into()))
}

/// The declared fields with the name fully qualified and reconcile's own
/// settings left out: what a live record set is compared with.
fn comparable(f: &Fields, fqdn: &str) -> Fields {
    let mut c = f.clone();
    c.insert("name".into(), Value::str(fqdn));
    c.shift_remove("zone_name");
    c
}

#[async_trait]
impl Provider for Route53Record {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let zone = zone_name_offline(stack, &r.fields);
        let mut found = problems(&r.fields, zone.as_deref());
        // A `ttl` the schema refused (out of range) is reported there already.
        if r.field_pos.contains_key("ttl") {
            found.retain(|(field, _, _)| *field != "ttl" || r.fields.contains_key("ttl"));
        }
        crate::kit::fields::diagnostics(r, found)
    }

    /// The new name or zone gets its record before the old one goes, so the
    /// name never stops answering; the same name and type in the same zone is
    /// one record set, which must go first.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        !changes.iter().any(|c| c.field == "type")
    }

    /// One ListResourceRecordSets per page of each zone, zones concurrently.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let mut by_zone: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in ids {
            if let Some((zone, name, ty)) = parse_id(id) {
                by_zone
                    .entry(zone.clone())
                    .or_default()
                    .push(id_of(&zone, &name, &ty));
            }
        }
        let reads = by_zone
            .into_iter()
            .map(|(zone, wanted)| async move {
                let Some((apex, all)) = list_zone(cx, &zone).await? else {
                    return Ok(None);
                };
                let found: Vec<Observed> = all
                    .iter()
                    .filter(|rr| rr.set_identifier().is_none())
                    .map(|rr| observation(&zone, &apex, rr))
                    .filter(|o| wanted.contains(&o.id))
                    .collect();
                Ok(Some(found))
            })
            .collect();
        let found = each(reads).await?.concat();
        // State may hold an id written otherwise (an import); answer under it.
        let mut out = HashMap::new();
        for id in ids {
            if let Some((zone, name, ty)) = parse_id(id) {
                let key = id_of(&zone, &name, &ty);
                if let Some(o) = found.iter().find(|o| o.id == key) {
                    out.insert(
                        id.clone(),
                        Observed {
                            id: id.clone(),
                            ..o.clone()
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// A declared relative name is the live fully qualified one when it
    /// qualifies to it in the live zone: observed in the declared form, so that
    /// `auth` and `auth.maxhealth.tech` are both the record `auth.maxhealth.tech`.
    async fn observe_against_desired(
        &self,
        _cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        for (r, o) in items.iter_mut() {
            let (Some(declared), Some(apex)) = (
                str_of(&r.fields, "name").filter(|n| literal(n)),
                o.attributes.get("zone").and_then(Value::as_str),
            ) else {
                continue;
            };
            let live = str_of(&o.fields, "name").unwrap_or_default();
            if qualify(declared, apex).ok().as_deref() == Some(live) {
                o.fields.insert("name".into(), Value::str(declared));
            }
        }
        Ok(())
    }

    /// Records carry no tags: none is ever found by them.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let (a, f) = (want.address, want.fields);
        let zone = str_of(f, "zone_id")
            .map(bare_zone_id)
            .filter(|z| !z.is_empty())
            .ok_or_else(|| {
                ProviderError::InvalidInput(format!("{a}: `zone_id` must be a known string"))
            })?
            .to_string();
        let apex = zone_domain(cx, a, &zone).await?;
        if let Some(declared) = str_of(f, "zone_name").map(norm_name) {
            if declared != apex {
                return Err(ProviderError::InvalidInput(format!(
                    "{a}: `zone_name` is \"{declared}\" but the zone `{zone}` is `{apex}`; fix \
                     `zone_name` or `zone_id`"
                )));
            }
        }
        crate::kit::fields::refuse(a, problems(f, Some(&apex)))?;
        let name = str_of(f, "name").unwrap_or_default();
        let fqdn =
            qualify(name, &apex).map_err(|e| ProviderError::InvalidInput(format!("{a}: {e}")))?;
        let ty = str_of(f, "type").unwrap_or_default().to_ascii_uppercase();
        let id = id_of(&zone, &fqdn, &ty);
        let observed = |fields: Fields| Observed {
            id: id.clone(),
            fields,
            attributes: fields_of([
                ("id", Value::str(&id)),
                ("fqdn", Value::str(&fqdn)),
                ("zone", Value::str(&apex)),
            ]),
            tags: indexmap::IndexMap::new(),
        };
        if let Some(live) = read_one(cx, &zone, &fqdn, &ty).await? {
            let have = fields_from(&zone, &live);
            let differs = self.diff(&comparable(f, &fqdn), &have);
            if differs.is_empty() {
                tracing::info!(address = a, %id, "taking the record that already holds the declared values");
                return Ok(observed(f.clone()));
            }
            let fields: Vec<&str> = differs.iter().map(|c| c.field.as_str()).collect();
            return Err(ProviderError::InvalidInput(format!(
                "{a}: the zone `{apex}` already has a {ty} record `{fqdn}` with other {} and this \
                 stack does not manage it; adopt it with `reconcile import {a} {id}`, or delete it \
                 first",
                fields.join(", ")
            )));
        }
        // CREATE, not UPSERT: a record someone makes meanwhile is refused, not overwritten.
        match change(cx, a, &zone, ChangeAction::Create, record_set(&fqdn, f)?).await {
            Ok(()) => {}
            // The emulator refuses to CREATE again a record set it once
            // created and then deleted, whenever records sort after it; when
            // the record is still not there, nobody's record is overwritten.
            Err(e) if e.to_string().contains("already exists") => {
                if read_one(cx, &zone, &fqdn, &ty).await?.is_some() {
                    return Err(e);
                }
                change(cx, a, &zone, ChangeAction::Upsert, record_set(&fqdn, f)?).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(observed(f.clone()))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let (zone, fqdn, _) = parse_id(&live.id).ok_or_else(|| {
            ProviderError::Other(format!("{}: malformed record id {}", want.address, live.id))
        })?;
        crate::kit::fields::refuse(want.address, problems(want.fields, None))?;
        let rr = record_set(&fqdn, want.fields)?;
        change(cx, want.address, &zone, ChangeAction::Upsert, rr).await?;
        Ok(Observed {
            id: live.id.clone(),
            fields: want.fields.clone(),
            attributes: live.attributes.clone(),
            tags: indexmap::IndexMap::new(),
        })
    }

    /// DELETE with the live values, which Route 53 wants exactly.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let a = format!("route53_record {id} (stack {})", cx.stack);
        let (zone, fqdn, ty) = parse_id(id)
            .ok_or_else(|| ProviderError::InvalidInput(format!("{a}: malformed record id")))?;
        let Some(mut live) = read_one(cx, &zone, &fqdn, &ty).await? else {
            return Ok(());
        };
        live.name = live.name.trim_end_matches('.').to_string();
        match change(cx, &a, &zone, ChangeAction::Delete, live).await {
            Err(e)
                if e.code() == Some("InvalidChangeBatch")
                    && e.to_string().contains("not found") =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{resource, stack};

    #[test]
    fn values_compare_as_route53_answers_them() {
        assert_eq!(norm_value("TXT", "\"v=spf1 -all\""), "v=spf1 -all");
        assert_eq!(norm_value("TXT", "v=spf1 -all"), "v=spf1 -all");
        assert_eq!(norm_value("TXT", "\"a\" \"b\""), "\"a\" \"b\"");
        assert_eq!(
            norm_value("CNAME", "_y.ACM-validations.aws."),
            "_y.acm-validations.aws"
        );
        assert_eq!(
            norm_value("MX", "10 Mail.example.com."),
            "10 mail.example.com"
        );
        assert_eq!(wire_value("TXT", "v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(wire_value("TXT", "\"a\" \"b\""), "\"a\" \"b\"");
        assert_eq!(wire_value("A", "1.2.3.4"), "1.2.3.4");
        assert_eq!(
            txt_strings("\"a\\\"b\" \"c\"").unwrap(),
            vec!["a\\\"b", "c"]
        );
    }

    #[test]
    fn ids_round_trip() {
        let id = id_of("/hostedzone/Z1", "_x.auth.maxhealth.tech.", "CNAME");
        assert_eq!(id, "Z1__x.auth.maxhealth.tech_CNAME");
        let (z, n, t) = parse_id(&id).unwrap();
        assert_eq!(
            (z.as_str(), n.as_str(), t.as_str()),
            ("Z1", "_x.auth.maxhealth.tech", "CNAME")
        );
    }

    #[test]
    fn validation_knows_the_zone_offline() {
        let zone = resource(
            "route53_zone.main",
            &[("name", Value::str("maxhealth.tech"))],
        );
        let rec = |fields: &[(&str, Value)]| {
            let mut all = vec![("zone_id", Value::str("${route53_zone.main.id}"))];
            all.extend(fields.iter().cloned());
            resource("route53_record.r", &all)
        };
        let bad = [
            rec(&[
                ("name", Value::str("auth.example.com.")),
                ("type", Value::str("A")),
                ("ttl", Value::Int(60)),
                ("records", Value::List(vec![Value::str("1.2.3.4")])),
            ]),
            rec(&[
                ("name", Value::str("maxhealth.tech")),
                ("type", Value::str("CNAME")),
                ("ttl", Value::Int(60)),
                ("records", Value::List(vec![Value::str("x.example.com")])),
            ]),
            rec(&[
                ("name", Value::str("auth")),
                ("type", Value::str("A")),
                ("ttl", Value::Int(60)),
                (
                    "alias",
                    Value::Map(fields_of([
                        ("name", Value::str("lb.example.com")),
                        ("zone_id", Value::str("Z35SXDOTRQ7X7K")),
                    ])),
                ),
            ]),
            rec(&[
                ("name", Value::str("auth")),
                ("type", Value::str("TXT")),
                ("ttl", Value::Int(60)),
                ("records", Value::List(vec![Value::str("x".repeat(256))])),
            ]),
        ];
        for r in bad {
            let s = stack(vec![zone.clone(), r.clone()]);
            let d = Route53Record.validate(&s, &r);
            assert_eq!(d.len(), 1, "{d:?}");
        }
        let ok = rec(&[
            ("name", Value::str("auth")),
            ("type", Value::str("A")),
            (
                "alias",
                Value::Map(fields_of([
                    ("name", Value::str("lb.example.com")),
                    ("zone_id", Value::str("Z35SXDOTRQ7X7K")),
                ])),
            ),
        ]);
        let s = stack(vec![zone, ok.clone()]);
        assert!(Route53Record.validate(&s, &ok).is_empty());
    }
}
