//! `dynamodb_table`: a DynamoDB table with its keys, indexes, capacity, point-in-time
//! recovery, encryption, time to live, stream, deletion protection and tags.
//!
//! Global secondary indexes change in place, but AWS takes one index create or
//! delete per UpdateTable call and only while the table and every index are
//! ACTIVE, and it cannot change an index's keys or projection at all: an
//! update is therefore a list of steps ([`gsi_steps`]: deletes, capacity
//! updates, creates; a changed index is deleted and created again), each
//! followed by the kit's waiter. Everything else UpdateTable changes (billing,
//! stream, encryption, table class, deletion protection) goes in a call of its
//! own, waited on the same way.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::duration::check_duration;
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{bool_of, changes_field, fields_of, str_of, Problem};
use crate::kit::tags::{own_tags, read_each, stack_resources_of_type};
use crate::kit::wait::{Backoff, Progress, Timeouts};
use crate::kit::{by_id, each, observe_declared, Cx, Desired, Provider, ProviderError, StatusSink};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    KeySchemaElement, KeyType, LocalSecondaryIndex, PointInTimeRecoverySpecification, Projection,
    ProjectionType, ProvisionedThroughput, ScalarAttributeType, SseDescription, SseSpecification,
    SseStatus, SseType, StreamSpecification, StreamViewType, TableClass, TableDescription,
    TableStatus, Tag, TimeToLiveSpecification, TimeToLiveStatus, UpdateGlobalSecondaryIndexAction,
};
use aws_sdk_dynamodb::Client;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct DynamodbTable;

const PROJECTIONS: &[&str] = &["ALL", "KEYS_ONLY", "INCLUDE"];
const ENCRYPTIONS: &[&str] = &["AWS_OWNED", "AWS_MANAGED", "CUSTOMER_MANAGED"];
/// The alias of the key AWS encrypts tables with when asked for KMS without a key.
const AWS_MANAGED_KEY: &str = "alias/aws/dynamodb";

const ATTRIBUTE_FIELDS: &[Field] = &[
    Field::new("name", Ty::Str, "The attribute's name.").required(),
    Field::new(
        "type",
        Ty::Enum(&["S", "N", "B"]),
        "S (string), N (number) or B (binary).",
    )
    .required(),
];

const GSI_FIELDS: &[Field] = &[
    Field::new("name", Ty::Str, "The index name, 3 to 255 characters.").required(),
    Field::new(
        "hash_key",
        Ty::Str,
        "The index's partition key, a declared attribute.",
    )
    .required(),
    Field::new(
        "range_key",
        Ty::Str,
        "The index's sort key, a declared attribute.",
    ),
    Field::new(
        "projection_type",
        Ty::Enum(PROJECTIONS),
        "What the index copies: ALL, KEYS_ONLY, or INCLUDE (the keys and `non_key_attributes`).",
    )
    .default(Default::Str("ALL")),
    Field::new(
        "non_key_attributes",
        Ty::List(&Ty::Str),
        "With INCLUDE only: the other attributes the index copies.",
    ),
    Field::new(
        "read_capacity",
        Ty::Int,
        "Read capacity units; required with a PROVISIONED table, refused otherwise.",
    )
    .range(1, 40000),
    Field::new(
        "write_capacity",
        Ty::Int,
        "Write capacity units; required with a PROVISIONED table, refused otherwise.",
    )
    .range(1, 40000),
];

const LSI_FIELDS: &[Field] = &[
    Field::new("name", Ty::Str, "The index name, 3 to 255 characters.").required(),
    Field::new(
        "range_key",
        Ty::Str,
        "The index's sort key, a declared attribute (the partition key is the table's).",
    )
    .required(),
    Field::new(
        "projection_type",
        Ty::Enum(PROJECTIONS),
        "What the index copies: ALL, KEYS_ONLY, or INCLUDE (the keys and `non_key_attributes`).",
    )
    .default(Default::Str("ALL")),
    Field::new(
        "non_key_attributes",
        Ty::List(&Ty::Str),
        "With INCLUDE only: the other attributes the index copies.",
    ),
];

const TIMEOUT_FIELDS: &[Field] = &[
    Field::new(
        "create",
        Ty::Pattern(check_duration),
        "How long a create may take until the table and its indexes are ACTIVE (default \"30m\").",
    ),
    Field::new(
        "update",
        Ty::Pattern(check_duration),
        "How long each step of an update may take (an index backfill of a big table takes \
         long; default \"60m\").",
    ),
    Field::new(
        "delete",
        Ty::Pattern(check_duration),
        "How long a delete may take until the table is gone (default \"10m\").",
    ),
];

/// Terraform's defaults for DynamoDB tables.
const DEFAULTS: Timeouts = Timeouts {
    create: Duration::from_secs(30 * 60),
    update: Duration::from_secs(60 * 60),
    delete: Duration::from_secs(10 * 60),
};

/// Tables settle in seconds, index backfills in minutes.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(2),
    max: Duration::from_secs(20),
};

pub static SCHEMA: Schema = Schema {
    kind: "dynamodb_table",
    doc: "A DynamoDB table. Global secondary indexes change in place, one index create or \
          delete per UpdateTable call with a wait until the table and every index are ACTIVE \
          between them; an index whose keys or projection change is deleted and created again \
          (AWS cannot change them in place). Keys and local secondary indexes are fixed at \
          creation: changing them replaces the table, which `protect = true` or \
          `deletion_protection_enabled = true` refuse at plan time. Observing costs one \
          DescribeTable and one DescribeContinuousBackups per table (concurrently), one \
          DescribeTimeToLive per table that declares `ttl_attribute`, one KMS DescribeKey of \
          alias/aws/dynamodb per observation that meets a KMS-encrypted table, and tags from the \
          plan's one Resource Groups Tagging API read of the whole stack (else one \
          ListTagsOfResource per table). The emulator (moto 5.2.5) differs from AWS: tables and \
          indexes are ACTIVE at once; UpdateTable ignores encryption and table class changes \
          (only CreateTable sets them) and DescribeTable reports no table class; an index \
          create replaces the attribute definitions with those sent and an index delete leaves \
          its attributes defined (reconcile observes only the attributes some key uses, and \
          sends all of them); it accepts several index creates in one UpdateTable (AWS takes one); \
          its aws/dynamodb key reports KeyManager CUSTOMER, so encryption is told apart by that \
          alias's ARN, not by the key's manager; a stream once disabled cannot be enabled again \
          (ResourceInUseException \"Cannot enable stream\"), so a changed `stream_view_type` \
          fails there.",
    fields: &[
        Field::new(
            "name",
            Ty::Str,
            "The table name, 3 to 255 characters, unique in the region. Changing it replaces the \
             table.",
        )
        .required()
        .force_new(),
        Field::new(
            "hash_key",
            Ty::Str,
            "The partition key: a declared attribute. Changing it replaces the table.",
        )
        .required()
        .force_new(),
        Field::new(
            "range_key",
            Ty::Str,
            "The sort key, a declared attribute; left out, the table has none. Changing it \
             replaces the table.",
        )
        .absent_clears()
        .force_new(),
        Field::new(
            "attributes",
            Ty::List(&Ty::Object(ATTRIBUTE_FIELDS)),
            "The key attributes of the table and its indexes, each `{ name, type }`, compared as a \
             set: exactly the attributes some key uses (AWS refuses others). Changed with the \
             indexes that use them.",
        )
        .required()
        .set(),
        Field::new(
            "billing_mode",
            Ty::Enum(&["PAY_PER_REQUEST", "PROVISIONED"]),
            "On-demand (PAY_PER_REQUEST) or PROVISIONED capacity. Changed in place (AWS allows a \
             switch once a day).",
        )
        .default(Default::Str("PAY_PER_REQUEST")),
        Field::new(
            "read_capacity",
            Ty::Int,
            "Read capacity units: required with PROVISIONED, refused with PAY_PER_REQUEST. \
             Changed in place.",
        )
        .range(1, 40000),
        Field::new(
            "write_capacity",
            Ty::Int,
            "Write capacity units: required with PROVISIONED, refused with PAY_PER_REQUEST. \
             Changed in place.",
        )
        .range(1, 40000),
        Field::new(
            "global_secondary_indexes",
            Ty::List(&Ty::Object(GSI_FIELDS)),
            "Global secondary indexes, compared as a set; left out, the table has none. Added, \
             removed and re-created (a key or projection change) in place, one at a time; \
             capacities updated in place.",
        )
        .absent_clears()
        .set(),
        Field::new(
            "local_secondary_indexes",
            Ty::List(&Ty::Object(LSI_FIELDS)),
            "Local secondary indexes (the table needs a `range_key`), compared as a set; left \
             out, the table has none. AWS makes them only with the table: a change replaces it.",
        )
        .absent_clears()
        .force_new()
        .set(),
        Field::new(
            "point_in_time_recovery",
            Ty::Bool,
            "Continuous backups restorable to any second of the last 35 days. Changed in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "encryption",
            Ty::Enum(ENCRYPTIONS),
            "Encryption at rest: AWS_OWNED (a key DynamoDB owns, free), AWS_MANAGED (the account's \
             aws/dynamodb KMS key) or CUSTOMER_MANAGED (`kms_key_arn`). Changed in place.",
        )
        .default(Default::Str("AWS_OWNED")),
        Field::new(
            "kms_key_arn",
            Ty::Str,
            "With CUSTOMER_MANAGED only (and then required): the KMS key's ARN, like \
             \"${kms_key.data.arn}\". Changed in place.",
        ),
        Field::new(
            "ttl_attribute",
            Ty::Str,
            "The attribute holding each item's expiry time (epoch seconds); items past it are \
             deleted by AWS. Left out, time to live is neither managed nor read. AWS allows one \
             change of it per hour; a new name disables the old one first.",
        ),
        Field::new(
            "stream_view_type",
            Ty::Enum(&["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]),
            "What the table's stream records; left out, the stream is off. Changed in place (a \
             different view disables the stream and enables a new one: a new `stream_arn`).",
        )
        .absent_clears(),
        Field::new(
            "deletion_protection_enabled",
            Ty::Bool,
            "AWS refuses to delete the table while on, and reconcile refuses plans that delete or \
             replace it. Changed in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "table_class",
            Ty::Enum(&["STANDARD", "STANDARD_INFREQUENT_ACCESS"]),
            "STANDARD, or STANDARD_INFREQUENT_ACCESS for rarely read data. Changed in place.",
        )
        .default(Default::Str("STANDARD")),
        Field::new(
            "timeouts",
            Ty::Object(TIMEOUT_FIELDS),
            "Reconcile setting: how long to wait for AWS, like `{ create = \"30m\", update = \
             \"60m\", delete = \"10m\" }` (Terraform's defaults); units s, m, h.",
        )
        .local(),
    ],
    attributes: &[
        ("id", "The table name."),
        ("arn", "The table's ARN, as IAM policies name it."),
        (
            "stream_arn",
            "The stream's ARN while a stream is on (empty otherwise): what a Lambda event source \
             mapping takes.",
        ),
    ],
    taggable: true,
};

// ---------------------------------------------------------------------------
// The declaration, read.

fn is_ref(s: &str) -> bool {
    s.contains("${")
}

fn maps<'a>(f: &'a Fields, k: &str) -> Vec<&'a IndexMap<String, Value>> {
    f.get(k)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .collect()
}

fn text(m: &IndexMap<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

fn int(m: &IndexMap<String, Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(Value::as_int)
}

/// One global secondary index as reconcile compares and changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gsi {
    pub name: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    pub projection_type: String,
    /// Sorted: AWS keeps them in no promised order.
    pub non_key_attributes: Vec<String>,
    pub read: Option<i64>,
    pub write: Option<i64>,
}

impl Gsi {
    pub fn of(m: &IndexMap<String, Value>) -> Gsi {
        let mut nka = m
            .get("non_key_attributes")
            .map(Value::str_list)
            .unwrap_or_default();
        nka.sort();
        Gsi {
            name: text(m, "name").unwrap_or_default(),
            hash_key: text(m, "hash_key").unwrap_or_default(),
            range_key: text(m, "range_key").filter(|r| !r.is_empty()),
            projection_type: text(m, "projection_type").unwrap_or_else(|| "ALL".into()),
            non_key_attributes: nka,
            read: int(m, "read_capacity"),
            write: int(m, "write_capacity"),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash_key.as_str()).chain(self.range_key.as_deref())
    }

    /// What AWS cannot change in place: keys (with their types) and projection.
    fn shape(&self, types: &BTreeMap<String, String>) -> String {
        let key = |k: &str| format!("{k}:{}", types.get(k).map(String::as_str).unwrap_or("?"));
        format!(
            "{}|{}|{}|{}",
            key(&self.hash_key),
            self.range_key.as_deref().map(key).unwrap_or_default(),
            self.projection_type,
            self.non_key_attributes.join(",")
        )
    }

    fn to_value(&self) -> Value {
        let mut m = fields_of([
            ("name", Value::str(&self.name)),
            ("hash_key", Value::str(&self.hash_key)),
            ("projection_type", Value::str(&self.projection_type)),
        ]);
        if let Some(r) = &self.range_key {
            m.insert("range_key".into(), Value::str(r));
        }
        if !self.non_key_attributes.is_empty() {
            m.insert(
                "non_key_attributes".into(),
                Value::List(self.non_key_attributes.iter().map(Value::str).collect()),
            );
        }
        if let (Some(r), Some(w)) = (self.read, self.write) {
            m.insert("read_capacity".into(), Value::Int(r));
            m.insert("write_capacity".into(), Value::Int(w));
        }
        Value::Map(m)
    }
}

/// One UpdateTable call of an index change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Delete(String),
    Update { name: String, read: i64, write: i64 },
    Create(Gsi),
}

/// The UpdateTable calls that take the live indexes to the wanted ones, in the
/// order they must run: deletes first (an index changed in its keys or
/// projection too, and they free the name and the table's index budget), then
/// capacity updates, then creates. `types` are attribute types, live and wanted,
/// so that a key changing type also re-creates its index.
pub fn gsi_steps(
    live: &[Gsi],
    want: &[Gsi],
    live_types: &BTreeMap<String, String>,
    want_types: &BTreeMap<String, String>,
) -> Vec<Step> {
    let find = |set: &[Gsi], name: &str| set.iter().find(|g| g.name == name).cloned();
    let mut deletes = Vec::new();
    let mut updates = Vec::new();
    let mut creates = Vec::new();
    let mut names: BTreeSet<&str> = live.iter().map(|g| g.name.as_str()).collect();
    names.extend(want.iter().map(|g| g.name.as_str()));
    for name in names {
        match (find(live, name), find(want, name)) {
            (Some(_), None) => deletes.push(Step::Delete(name.into())),
            (None, Some(w)) => creates.push(Step::Create(w)),
            (Some(l), Some(w)) if l.shape(live_types) != w.shape(want_types) => {
                deletes.push(Step::Delete(name.into()));
                creates.push(Step::Create(w));
            }
            (Some(l), Some(w)) => {
                if let (Some(read), Some(write)) = (w.read, w.write) {
                    if (l.read, l.write) != (Some(read), Some(write)) {
                        updates.push(Step::Update {
                            name: name.into(),
                            read,
                            write,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    deletes.into_iter().chain(updates).chain(creates).collect()
}

/// Declared attribute name -> type.
fn attribute_types(f: &Fields) -> BTreeMap<String, String> {
    maps(f, "attributes")
        .into_iter()
        .filter_map(|m| Some((text(m, "name")?, text(m, "type")?)))
        .collect()
}

fn gsis_of(f: &Fields) -> Vec<Gsi> {
    maps(f, "global_secondary_indexes")
        .into_iter()
        .map(Gsi::of)
        .collect()
}

/// Every key attribute the table and `gsis` use, with the LSIs' and the table's own.
fn keys_used(f: &Fields, gsis: &[Gsi]) -> BTreeSet<String> {
    let mut used: BTreeSet<String> = ["hash_key", "range_key"]
        .iter()
        .filter_map(|k| str_of(f, k).map(str::to_string))
        .collect();
    used.extend(
        maps(f, "local_secondary_indexes")
            .into_iter()
            .filter_map(|m| text(m, "range_key")),
    );
    used.extend(gsis.iter().flat_map(|g| g.keys().map(str::to_string)));
    used.retain(|k| !k.is_empty());
    used
}

/// Problems with a table's fields.
pub fn problems(f: &Fields) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let mut declared = BTreeSet::new();
    for m in maps(f, "attributes") {
        if let Some(n) = text(m, "name") {
            if !declared.insert(n.clone()) {
                out.push((
                    Some("attributes"),
                    format!("attribute `{n}` is declared twice"),
                    "declare each key attribute once, with its type".into(),
                ));
            }
        }
    }
    let gsis = gsis_of(f);
    let lsis = maps(f, "local_secondary_indexes");
    let mut check_key = |field: &'static str, what: String, key: &str| {
        if !key.is_empty() && !is_ref(key) && !declared.contains(key) {
            out.push((
                Some(field),
                format!("{what} `{key}` is not a declared attribute"),
                format!("add `{{ name = \"{key}\", type = \"S\" }}` (or N, B) to `attributes`"),
            ));
        }
    };
    for k in ["hash_key", "range_key"] {
        if let Some(key) = str_of(f, k) {
            check_key(k, format!("the table's {k}"), key);
        }
    }
    for g in &gsis {
        for key in g.keys() {
            check_key(
                "global_secondary_indexes",
                format!("a key of index `{}`", g.name),
                key,
            );
        }
    }
    for m in &lsis {
        if let Some(key) = text(m, "range_key") {
            let name = text(m, "name").unwrap_or_default();
            check_key(
                "local_secondary_indexes",
                format!("the range_key of index `{name}`"),
                &key,
            );
        }
    }
    let used = keys_used(f, &gsis);
    if !declared.iter().any(|d| is_ref(d)) && !used.iter().any(|u| is_ref(u)) {
        for d in declared.iter().filter(|d| !used.contains(*d)) {
            out.push((
                Some("attributes"),
                format!(
                    "attribute `{d}` is declared but no key of the table or its indexes uses it"
                ),
                "declare only key attributes (AWS refuses others); other item attributes need no \
                 declaration"
                    .into(),
            ));
        }
    }
    let mut index_names = BTreeSet::new();
    let names = gsis
        .iter()
        .map(|g| ("global_secondary_indexes", g.name.clone()))
        .chain(lsis.iter().map(|m| {
            (
                "local_secondary_indexes",
                text(m, "name").unwrap_or_default(),
            )
        }));
    for (field, n) in names {
        if !index_names.insert(n.clone()) {
            out.push((
                Some(field),
                format!("index name `{n}` is used twice"),
                "give every index of the table its own name".into(),
            ));
        }
    }
    if !lsis.is_empty() && str_of(f, "range_key").is_none() {
        out.push((
            Some("local_secondary_indexes"),
            "local secondary indexes need a table with a range_key".into(),
            "add `range_key`, or make the indexes global".into(),
        ));
    }
    let projections = gsis
        .iter()
        .map(|g| {
            (
                "global_secondary_indexes",
                g.name.clone(),
                g.projection_type.clone(),
                !g.non_key_attributes.is_empty(),
            )
        })
        .chain(lsis.iter().map(|m| {
            (
                "local_secondary_indexes",
                text(m, "name").unwrap_or_default(),
                text(m, "projection_type").unwrap_or_else(|| "ALL".into()),
                m.get("non_key_attributes")
                    .is_some_and(|v| !v.str_list().is_empty()),
            )
        }));
    for (field, name, projection, nka) in projections {
        if nka && projection != "INCLUDE" {
            out.push((
                Some(field),
                format!("index `{name}` lists non_key_attributes with projection {projection}"),
                "use projection_type = \"INCLUDE\", or remove non_key_attributes".into(),
            ));
        } else if !nka && projection == "INCLUDE" {
            out.push((
                Some(field),
                format!("index `{name}` has projection INCLUDE but no non_key_attributes"),
                "list the attributes to include, or use ALL or KEYS_ONLY".into(),
            ));
        }
    }
    let provisioned = str_of(f, "billing_mode") == Some("PROVISIONED");
    let capacities = ["read_capacity", "write_capacity"];
    for k in capacities {
        match (provisioned, f.contains_key(k)) {
            (true, false) => out.push((
                Some("billing_mode"),
                format!("a PROVISIONED table needs `{k}`"),
                format!("add `{k} = N`, or use billing_mode = \"PAY_PER_REQUEST\""),
            )),
            (false, true) => out.push((
                Some(k),
                format!("`{k}` is for PROVISIONED tables, and this one is on demand"),
                format!("remove `{k}`, or set billing_mode = \"PROVISIONED\""),
            )),
            _ => {}
        }
    }
    for g in &gsis {
        let has = g.read.is_some() || g.write.is_some();
        if provisioned && (g.read.is_none() || g.write.is_none()) {
            out.push((
                Some("global_secondary_indexes"),
                format!(
                    "index `{}` of a PROVISIONED table needs read_capacity and write_capacity",
                    g.name
                ),
                "add both to the index".into(),
            ));
        } else if !provisioned && has {
            out.push((
                Some("global_secondary_indexes"),
                format!(
                    "index `{}` has capacities, but the table is on demand",
                    g.name
                ),
                "remove read_capacity and write_capacity from the index, or set billing_mode = \
                 \"PROVISIONED\""
                    .into(),
            ));
        }
    }
    let customer = str_of(f, "encryption") == Some("CUSTOMER_MANAGED");
    match (customer, f.contains_key("kms_key_arn")) {
        (true, false) => out.push((
            Some("encryption"),
            "CUSTOMER_MANAGED encryption needs `kms_key_arn`".into(),
            "add `kms_key_arn = \"${kms_key.NAME.arn}\"`".into(),
        )),
        (false, true) => out.push((
            Some("kms_key_arn"),
            format!(
                "`kms_key_arn` is only used with encryption = \"CUSTOMER_MANAGED\", not {}",
                str_of(f, "encryption").unwrap_or("AWS_OWNED")
            ),
            "set encryption = \"CUSTOMER_MANAGED\", or remove kms_key_arn".into(),
        )),
        _ => {}
    }
    if let Some(n) = str_of(f, "name").filter(|n| !is_ref(n)) {
        let ok = (3..=255).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            out.push((
                Some("name"),
                format!("\"{n}\" is not a DynamoDB table name"),
                "use 3 to 255 letters, digits, `_`, `-` and `.`".into(),
            ));
        }
    }
    let index_names = gsis
        .iter()
        .map(|g| ("global_secondary_indexes", g.name.clone()))
        .chain(lsis.iter().map(|m| {
            (
                "local_secondary_indexes",
                text(m, "name").unwrap_or_default(),
            )
        }));
    for (field, n) in index_names {
        if !(3..=255).contains(&n.len()) && !is_ref(&n) {
            out.push((
                Some(field),
                format!("index name `{n}` is not 3 to 255 characters long"),
                "lengthen or shorten it".into(),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Encryption.

/// The `encryption` and `kms_key_arn` a table's SSEDescription means.
/// `aws_managed` is the ARN of the aws/dynamodb key, which AWS_MANAGED uses:
/// the description names a key either way, and only its identity tells them apart.
pub fn sse_of(d: Option<&SseDescription>, aws_managed: Option<&str>) -> (String, Option<String>) {
    let on = d.is_some_and(|d| {
        matches!(
            d.status(),
            Some(SseStatus::Enabled | SseStatus::Enabling | SseStatus::Updating)
        )
    });
    if !on {
        return ("AWS_OWNED".into(), None);
    }
    match d.and_then(|d| d.kms_master_key_arn()) {
        Some(arn) if Some(arn) != aws_managed => ("CUSTOMER_MANAGED".into(), Some(arn.to_string())),
        _ => ("AWS_MANAGED".into(), None),
    }
}

/// The SSESpecification that asks for `encryption` (with `kms`).
pub fn sse_spec(encryption: &str, kms: Option<&str>) -> SseSpecification {
    match encryption {
        "AWS_MANAGED" => SseSpecification::builder()
            .enabled(true)
            .sse_type(SseType::Kms)
            .build(),
        "CUSTOMER_MANAGED" => SseSpecification::builder()
            .enabled(true)
            .sse_type(SseType::Kms)
            .set_kms_master_key_id(kms.map(str::to_string))
            .build(),
        _ => SseSpecification::builder().enabled(false).build(),
    }
}

/// Whether any table is KMS-encrypted with some key: only then is the
/// aws/dynamodb key's identity worth a call.
fn names_a_key(d: &TableDescription) -> bool {
    d.sse_description()
        .and_then(|s| s.kms_master_key_arn())
        .is_some()
}

/// The ARN of the aws/dynamodb key, once per observation; `None` while the
/// account has none yet (AWS makes it on first use).
async fn aws_managed_key(
    cx: &Cx,
    cell: &OnceCell<Option<String>>,
) -> Result<Option<String>, ProviderError> {
    cell.get_or_try_init(|| async {
        let out = unless_gone(cx.kms.describe_key().key_id(AWS_MANAGED_KEY).send().await).map_err(
            |e| {
                e.map_message(|m| {
                    format!(
                        "reading {AWS_MANAGED_KEY} to tell AWS_MANAGED from CUSTOMER_MANAGED \
                         table encryption (kms:DescribeKey): {m}"
                    )
                })
            },
        )?;
        Ok(out.and_then(|o| o.key_metadata().and_then(|m| m.arn().map(str::to_string))))
    })
    .await
    .cloned()
}

// ---------------------------------------------------------------------------
// Observing.

fn b<T>(r: Result<T, BuildError>) -> Result<T, ProviderError> {
    r.map_err(|e| ProviderError::InvalidInput(e.to_string()))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| b(Tag::builder().key(k).value(v).build()))
        .collect()
}

/// The table's description; `None` when it does not exist.
async fn describe(client: &Client, name: &str) -> Result<Option<TableDescription>, ProviderError> {
    let out = unless_gone(client.describe_table().table_name(name).send().await)?;
    Ok(out.and_then(|o| o.table().cloned()))
}

/// Whether point-in-time recovery is on; `None` when the table is gone.
async fn pitr(cx: &Cx, name: &str) -> Result<Option<bool>, ProviderError> {
    let out = cx
        .dynamodb
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .map_err(ProviderError::from_sdk);
    // DescribeContinuousBackups says TableNotFoundException, which is no *NotFound code.
    let out = match out {
        Err(ProviderError::Aws { code, .. }) if code == "TableNotFoundException" => {
            return Ok(None)
        }
        other => unless_gone(other)?,
    };
    Ok(out.map(|o| {
        o.continuous_backups_description()
            .and_then(|c| c.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .is_some_and(|s| s.as_str() == "ENABLED")
    }))
}

/// The attribute time to live reads, "" when off; `None` when the table is gone.
async fn ttl(cx: &Cx, name: &str) -> Result<Option<String>, ProviderError> {
    let out = unless_gone(
        cx.dynamodb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await,
    )?;
    Ok(out.map(|o| {
        o.time_to_live_description()
            .filter(|d| {
                matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
            })
            .and_then(|d| d.attribute_name())
            .unwrap_or_default()
            .to_string()
    }))
}

/// A table's tags with DynamoDB's own API; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let mut tags = Vec::new();
    let mut token = None;
    loop {
        let Some(out) = unless_gone(
            cx.dynamodb
                .list_tags_of_resource()
                .resource_arn(arn)
                .set_next_token(token)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        tags.extend(out.tags().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(Some(own_tags(tags.iter().map(|t| (t.key(), t.value()))))),
        }
    }
}

fn key_of(keys: &[KeySchemaElement], kind: KeyType) -> Option<String> {
    keys.iter()
        .find(|k| k.key_type() == &kind)
        .map(|k| k.attribute_name().to_string())
}

fn projection_of(p: Option<&Projection>) -> (String, Vec<String>) {
    let kind = p
        .and_then(|p| p.projection_type())
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "ALL".into());
    let mut nka: Vec<String> = p
        .map(|p| p.non_key_attributes().to_vec())
        .unwrap_or_default();
    nka.sort();
    (kind, nka)
}

fn billing_of(d: &TableDescription) -> &'static str {
    // AWS leaves the summary out for tables that were always provisioned.
    match d.billing_mode_summary().and_then(|s| s.billing_mode()) {
        Some(BillingMode::PayPerRequest) => "PAY_PER_REQUEST",
        _ => "PROVISIONED",
    }
}

fn live_gsis(d: &TableDescription, provisioned: bool) -> Vec<Gsi> {
    d.global_secondary_indexes()
        .iter()
        .map(|g| {
            let (projection_type, non_key_attributes) = projection_of(g.projection());
            let t = g.provisioned_throughput().filter(|_| provisioned);
            Gsi {
                name: g.index_name().unwrap_or_default().to_string(),
                hash_key: key_of(g.key_schema(), KeyType::Hash).unwrap_or_default(),
                range_key: key_of(g.key_schema(), KeyType::Range),
                projection_type,
                non_key_attributes,
                read: t.and_then(|t| t.read_capacity_units()),
                write: t.and_then(|t| t.write_capacity_units()),
            }
        })
        .collect()
}

/// The fields a description shows (everything but point-in-time recovery, time
/// to live and the encryption key's identity, read apart).
pub fn fields_of_table(d: &TableDescription, aws_managed: Option<&str>) -> Fields {
    let billing = billing_of(d);
    let provisioned = billing == "PROVISIONED";
    let gsis = live_gsis(d, provisioned);
    let mut f = fields_of([
        ("name", Value::str(d.table_name().unwrap_or_default())),
        (
            "hash_key",
            Value::str(key_of(d.key_schema(), KeyType::Hash).unwrap_or_default()),
        ),
        ("billing_mode", Value::str(billing)),
        (
            "global_secondary_indexes",
            Value::List(gsis.iter().map(Gsi::to_value).collect()),
        ),
        (
            "deletion_protection_enabled",
            Value::Bool(d.deletion_protection_enabled().unwrap_or(false)),
        ),
        (
            "table_class",
            Value::str(
                d.table_class_summary()
                    .and_then(|c| c.table_class())
                    .map(|c| c.as_str())
                    .unwrap_or("STANDARD"),
            ),
        ),
    ]);
    if let Some(r) = key_of(d.key_schema(), KeyType::Range) {
        f.insert("range_key".into(), Value::str(r));
    }
    let lsis: Vec<Value> = d
        .local_secondary_indexes()
        .iter()
        .map(|l| {
            let (projection_type, nka) = projection_of(l.projection());
            let mut m = fields_of([
                ("name", Value::str(l.index_name().unwrap_or_default())),
                (
                    "range_key",
                    Value::str(key_of(l.key_schema(), KeyType::Range).unwrap_or_default()),
                ),
                ("projection_type", Value::str(projection_type)),
            ]);
            if !nka.is_empty() {
                m.insert(
                    "non_key_attributes".into(),
                    Value::List(nka.iter().map(Value::str).collect()),
                );
            }
            Value::Map(m)
        })
        .collect();
    f.insert("local_secondary_indexes".into(), Value::List(lsis));
    // Only the attributes some key uses: AWS keeps no others, and the emulator
    // keeps those of deleted indexes too.
    let used = keys_used(&f, &gsis);
    let attributes = d
        .attribute_definitions()
        .iter()
        .filter(|a| used.contains(a.attribute_name()))
        .map(|a| {
            Value::Map(fields_of([
                ("name", Value::str(a.attribute_name())),
                ("type", Value::str(a.attribute_type().as_str())),
            ]))
        })
        .collect();
    f.insert("attributes".into(), Value::List(attributes));
    if provisioned {
        if let Some(t) = d.provisioned_throughput() {
            if let (Some(r), Some(w)) = (t.read_capacity_units(), t.write_capacity_units()) {
                f.insert("read_capacity".into(), Value::Int(r));
                f.insert("write_capacity".into(), Value::Int(w));
            }
        }
    }
    let (encryption, key) = sse_of(d.sse_description(), aws_managed);
    f.insert("encryption".into(), Value::str(encryption));
    if let Some(k) = key {
        f.insert("kms_key_arn".into(), Value::str(k));
    }
    if let Some(v) = d
        .stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
    {
        f.insert("stream_view_type".into(), Value::str(v.as_str()));
    }
    f
}

fn stream_arn(d: &TableDescription) -> &str {
    let on = d.stream_specification().is_some_and(|s| s.stream_enabled());
    if on {
        d.latest_stream_arn().unwrap_or_default()
    } else {
        ""
    }
}

fn attributes_of(d: &TableDescription) -> Fields {
    let name = d.table_name().unwrap_or_default();
    fields_of([
        ("id", Value::str(name)),
        ("arn", Value::str(d.table_arn().unwrap_or_default())),
        ("stream_arn", Value::str(stream_arn(d))),
    ])
}

/// One table, fully read but for time to live; tags from the stack index
/// where it lists the table. A table being deleted is gone already.
async fn read(
    cx: &Cx,
    name: &str,
    key: &OnceCell<Option<String>>,
) -> Result<Option<Observed>, ProviderError> {
    let Some(d) = describe(&cx.dynamodb, name).await? else {
        return Ok(None);
    };
    if d.table_status() == Some(&TableStatus::Deleting) {
        return Ok(None);
    }
    let aws_key = if names_a_key(&d) {
        aws_managed_key(cx, key).await?
    } else {
        None
    };
    let mut f = fields_of_table(&d, aws_key.as_deref());
    let Some(pitr) = pitr(cx, name).await? else {
        return Ok(None);
    };
    f.insert("point_in_time_recovery".into(), Value::Bool(pitr));
    let attributes = attributes_of(&d);
    let arn = d.table_arn().unwrap_or_default();
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, name, arn).await {
        Some(t) => t,
        None => match list_tags(cx, arn).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    Ok(Some(Observed {
        id: name.to_string(),
        fields: f,
        attributes,
        tags,
    }))
}

/// The stack's tables for `addresses` (all when empty), each with its address,
/// from one Tagging API listing: ListTables answers names without tags.
async fn tagged_names(
    cx: &Cx,
    addresses: &[String],
) -> Result<Vec<(String, String)>, ProviderError> {
    Ok(stack_resources_of_type(cx, "dynamodb:table")
        .await?
        .into_iter()
        .filter_map(|(arn, tags)| {
            let address = crate::kit::tags::stack_address(cx, &tags)?;
            let name = arn.rsplit_once(":table/")?.1.to_string();
            (addresses.is_empty() || addresses.contains(&address)).then_some((name, address))
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Waiting.

/// What a wait ends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Goal {
    /// The table and every index ACTIVE, and this index (just deleted) gone.
    Settled(Option<String>),
    Gone,
}

/// One DescribeTable answer (`None`: no table) judged against the goal.
pub fn progress(
    address: &str,
    d: Option<&TableDescription>,
    goal: &Goal,
) -> Result<Progress, ProviderError> {
    let Some(d) = d else {
        return match goal {
            Goal::Gone => Ok(Progress::Done("deleted".into())),
            Goal::Settled(_) => Err(ProviderError::NotFound(format!(
                "{address}: the table disappeared while reconcile waited for it (deleted outside \
                 reconcile?); run plan again"
            ))),
        };
    };
    let status = d.table_status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    if *goal == Goal::Gone {
        return Ok(Progress::Pending(status.to_string()));
    }
    if matches!(
        d.table_status(),
        Some(
            TableStatus::InaccessibleEncryptionCredentials
                | TableStatus::Archiving
                | TableStatus::Archived
        )
    ) {
        return Ok(Progress::Failed(format!(
            "the table is {status}, which it does not leave by itself"
        )));
    }
    if d.table_status() != Some(&TableStatus::Active) {
        return Ok(Progress::Pending(status.to_string()));
    }
    for g in d.global_secondary_indexes() {
        let s = g.index_status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
        if s != "ACTIVE" {
            return Ok(Progress::Pending(format!(
                "index {} {s}",
                g.index_name().unwrap_or_default()
            )));
        }
    }
    if let Goal::Settled(Some(gone)) = goal {
        if d.global_secondary_indexes()
            .iter()
            .any(|g| g.index_name() == Some(gone.as_str()))
        {
            return Ok(Progress::Pending(format!("index {gone} DELETING")));
        }
    }
    Ok(Progress::Done("ACTIVE".into()))
}

/// How one apply waits on one table: where to report, how long, how often.
pub struct Waiter<'a> {
    pub client: &'a Client,
    pub address: &'a str,
    pub table: &'a str,
    pub status: &'a StatusSink,
    pub timeouts: Timeouts,
    pub backoff: Backoff,
}

impl Waiter<'_> {
    /// Polls DescribeTable with the kit's waiter until `goal`.
    pub async fn wait(&self, goal: Goal, phase: &'static str) -> Result<(), ProviderError> {
        let timeout = match phase {
            "create" => self.timeouts.create,
            "delete" => self.timeouts.delete,
            _ => self.timeouts.update,
        };
        let when_timed_out = match goal {
            Goal::Gone => {
                "the table is still being deleted; the next apply deletes it if it is \
                           still there"
            }
            Goal::Settled(_) => {
                "AWS carries on with the change (an index backfill of a big table \
                                 takes long); the next plan compares the table again and takes \
                                 the remaining steps"
            }
        };
        let w = crate::kit::wait::Wait {
            address: self.address,
            phase,
            timeout,
            backoff: self.backoff,
            status: self.status,
            when_failed: "look at the table in the DynamoDB console (its KMS key, say), fix the \
                          cause, then apply again",
            when_timed_out,
        };
        let (client, table, address) = (self.client, self.table, self.address);
        let goal = &goal;
        crate::kit::wait::wait(&w, || async move {
            let d = describe(client, table)
                .await
                .map_err(|e| at(address, "DescribeTable", e))?;
            progress(address, d.as_ref(), goal)
        })
        .await
    }

    /// Runs index steps in order, each once the table has settled from the last.
    /// `defs` gives the attribute definitions a create sends: every key
    /// attribute of the table and of its indexes once that index exists.
    pub async fn run_steps(
        &self,
        steps: &[Step],
        provisioned: bool,
        defs: &(dyn Fn(&Gsi) -> Result<Vec<AttributeDefinition>, ProviderError> + Sync),
    ) -> Result<(), ProviderError> {
        for step in steps {
            let (update, gone, what) = match step {
                Step::Delete(name) => (
                    GlobalSecondaryIndexUpdate::builder()
                        .delete(b(DeleteGlobalSecondaryIndexAction::builder()
                            .index_name(name)
                            .build())?)
                        .build(),
                    Some(name.clone()),
                    format!("deleting index {name}"),
                ),
                Step::Update { name, read, write } => (
                    GlobalSecondaryIndexUpdate::builder()
                        .update(b(UpdateGlobalSecondaryIndexAction::builder()
                            .index_name(name)
                            .provisioned_throughput(throughput(*read, *write)?)
                            .build())?)
                        .build(),
                    None,
                    format!("updating the capacity of index {name}"),
                ),
                Step::Create(g) => {
                    let mut action = CreateGlobalSecondaryIndexAction::builder()
                        .index_name(&g.name)
                        .set_key_schema(Some(key_schema(&g.hash_key, g.range_key.as_deref())?))
                        .projection(projection(&g.projection_type, &g.non_key_attributes));
                    if provisioned {
                        if let (Some(r), Some(w)) = (g.read, g.write) {
                            action = action.provisioned_throughput(throughput(r, w)?);
                        }
                    }
                    (
                        GlobalSecondaryIndexUpdate::builder()
                            .create(b(action.build())?)
                            .build(),
                        None,
                        format!("creating index {}", g.name),
                    )
                }
            };
            let mut call = self
                .client
                .update_table()
                .table_name(self.table)
                .global_secondary_index_updates(update);
            if let Step::Create(g) = step {
                call = call.set_attribute_definitions(Some(defs(g)?));
            }
            call.send()
                .await
                .map_err(|e| at(self.address, &format!("UpdateTable ({what})"), e.into()))?;
            self.wait(Goal::Settled(gone), "update").await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Requests.

fn throughput(read: i64, write: i64) -> Result<ProvisionedThroughput, ProviderError> {
    b(ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build())
}

fn key_schema(hash: &str, range: Option<&str>) -> Result<Vec<KeySchemaElement>, ProviderError> {
    let mut keys = vec![b(KeySchemaElement::builder()
        .attribute_name(hash)
        .key_type(KeyType::Hash)
        .build())?];
    if let Some(r) = range {
        keys.push(b(KeySchemaElement::builder()
            .attribute_name(r)
            .key_type(KeyType::Range)
            .build())?);
    }
    Ok(keys)
}

fn projection(kind: &str, nka: &[String]) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(kind))
        .set_non_key_attributes((!nka.is_empty()).then(|| nka.to_vec()))
        .build()
}

/// Definitions of the declared attributes among `used`.
fn definitions(
    types: &BTreeMap<String, String>,
    used: &BTreeSet<String>,
) -> Result<Vec<AttributeDefinition>, ProviderError> {
    types
        .iter()
        .filter(|(n, _)| used.contains(*n))
        .map(|(n, t)| {
            b(AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::from(t.as_str()))
                .build())
        })
        .collect()
}

fn timeouts_of(address: &str, f: Option<&Fields>) -> Result<Timeouts, ProviderError> {
    Timeouts::of(address, f, DEFAULTS)
}

impl DynamodbTable {
    fn waiter<'a>(
        &self,
        cx: &'a Cx,
        address: &'a str,
        table: &'a str,
        f: Option<&Fields>,
    ) -> Result<Waiter<'a>, ProviderError> {
        Ok(Waiter {
            client: &cx.dynamodb,
            address,
            table,
            status: &cx.status,
            timeouts: timeouts_of(address, f)?,
            backoff: BACKOFF,
        })
    }

    /// One UpdateTable call (built by `call`), then a wait until the table settles.
    async fn table_call<F>(&self, w: &Waiter<'_>, what: &str, call: F) -> Result<(), ProviderError>
    where
        F: FnOnce(
            aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
        ) -> Result<
            aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
            ProviderError,
        >,
    {
        call(w.client.update_table().table_name(w.table))?
            .send()
            .await
            .map_err(|e| at(w.address, &format!("UpdateTable ({what})"), e.into()))?;
        w.wait(Goal::Settled(None), "update").await
    }

    /// Makes the live table match `want` for the changed fields.
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let (f, a) = (want.fields, want.address);
        let table = live.id.as_str();
        let w = self.waiter(cx, a, table, Some(f))?;
        let on = |k: &str| changes_field(changes, k);
        let provisioned = str_of(f, "billing_mode") == Some("PROVISIONED");
        let want_types = attribute_types(f);
        let live_types = attribute_types(&live.fields);
        for k in ["hash_key", "range_key"] {
            if let Some(key) = str_of(f, k) {
                if let (Some(x), Some(y)) = (want_types.get(key), live_types.get(key)) {
                    if x != y {
                        return Err(ProviderError::InvalidInput(format!(
                            "{a}: the table's {k} `{key}` is of type {y}, and AWS cannot change a \
                             table key's type; rename the table to replace it, or keep {y}"
                        )));
                    }
                }
            }
        }

        // Indexes first (deletes, then billing, then capacity updates and
        // creates): a switch to PROVISIONED must name every index's capacity,
        // so the indexes it names must be the ones that stay.
        let want_gsis = gsis_of(f);
        let live_gsis = gsis_of(&live.fields);
        let steps = if on("global_secondary_indexes") || on("attributes") || on("billing_mode") {
            gsi_steps(&live_gsis, &want_gsis, &live_types, &want_types)
        } else {
            vec![]
        };
        let (deletes, mut rest): (Vec<Step>, Vec<Step>) = steps
            .into_iter()
            .partition(|s| matches!(s, Step::Delete(_)));
        // The indexes that exist once a create is done: those wanted that live
        // already in the wanted shape, and those created up to it, in order.
        let kept: Vec<Gsi> = want_gsis
            .iter()
            .filter(|g| {
                live_gsis
                    .iter()
                    .any(|l| l.name == g.name && l.shape(&live_types) == g.shape(&want_types))
            })
            .cloned()
            .collect();
        let created: Vec<Gsi> = rest
            .iter()
            .filter_map(|s| match s {
                Step::Create(g) => Some(g.clone()),
                _ => None,
            })
            .collect();
        let used_with = |upto: &Gsi| -> Result<Vec<AttributeDefinition>, ProviderError> {
            let mut now = kept.clone();
            for g in &created {
                now.push(g.clone());
                if g.name == upto.name {
                    break;
                }
            }
            definitions(&want_types, &keys_used(f, &now))
        };
        w.run_steps(&deletes, provisioned, &used_with).await?;
        let billing_changed = on("billing_mode") || on("read_capacity") || on("write_capacity");
        if billing_changed {
            let mode = str_of(f, "billing_mode").unwrap_or("PAY_PER_REQUEST");
            let mut index_updates = Vec::new();
            if provisioned {
                // Every index that stays needs its capacity in the same call.
                for g in want_gsis.iter().filter(|g| {
                    !rest
                        .iter()
                        .any(|s| matches!(s, Step::Create(c) if c.name == g.name))
                }) {
                    if let (Some(r), Some(wc)) = (g.read, g.write) {
                        index_updates.push(
                            GlobalSecondaryIndexUpdate::builder()
                                .update(b(UpdateGlobalSecondaryIndexAction::builder()
                                    .index_name(&g.name)
                                    .provisioned_throughput(throughput(r, wc)?)
                                    .build())?)
                                .build(),
                        );
                    }
                }
                rest.retain(|s| !matches!(s, Step::Update { .. }));
            }
            let rw = (
                f.get("read_capacity").and_then(Value::as_int),
                f.get("write_capacity").and_then(Value::as_int),
            );
            self.table_call(&w, "billing mode and capacity", |c| {
                let mut c = c.billing_mode(BillingMode::from(mode));
                if let (true, (Some(r), Some(wc))) = (provisioned, rw) {
                    c = c.provisioned_throughput(throughput(r, wc)?);
                }
                Ok(c.set_global_secondary_index_updates(
                    (!index_updates.is_empty()).then_some(index_updates),
                ))
            })
            .await?;
        }
        w.run_steps(&rest, provisioned, &used_with).await?;

        if on("stream_view_type") {
            let live_view = str_of(&live.fields, "stream_view_type");
            let want_view = str_of(f, "stream_view_type");
            if live_view.is_some() {
                // AWS cannot change the view of an enabled stream: off, then on.
                self.table_call(&w, "disabling the stream", |c| {
                    Ok(c.stream_specification(b(StreamSpecification::builder()
                        .stream_enabled(false)
                        .build())?))
                })
                .await?;
            }
            if let Some(view) = want_view {
                self.table_call(&w, "enabling the stream", |c| {
                    Ok(c.stream_specification(b(StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::from(view))
                        .build())?))
                })
                .await?;
            }
        }
        if on("encryption") || on("kms_key_arn") {
            let enc = str_of(f, "encryption").unwrap_or("AWS_OWNED");
            let key = str_of(f, "kms_key_arn");
            self.table_call(&w, "encryption", |c| {
                Ok(c.sse_specification(sse_spec(enc, key)))
            })
            .await?;
        }
        if on("table_class") {
            let class = str_of(f, "table_class").unwrap_or("STANDARD");
            self.table_call(&w, "table class", |c| {
                Ok(c.table_class(TableClass::from(class)))
            })
            .await?;
        }
        if on("deletion_protection_enabled") {
            let p = bool_of(f, "deletion_protection_enabled").unwrap_or(false);
            self.table_call(&w, "deletion protection", |c| {
                Ok(c.deletion_protection_enabled(p))
            })
            .await?;
        }
        if on("point_in_time_recovery") {
            set_pitr(
                cx,
                a,
                table,
                bool_of(f, "point_in_time_recovery").unwrap_or(false),
            )
            .await?;
        }
        if on("ttl_attribute") {
            if let Some(attr) = str_of(f, "ttl_attribute") {
                let old = str_of(&live.fields, "ttl_attribute").filter(|o| !o.is_empty());
                if let Some(old) = old.filter(|o| *o != attr) {
                    set_ttl(cx, a, table, old, false).await?;
                }
                set_ttl(cx, a, table, attr, true).await?;
            }
        }
        if on("tags") {
            let arn = live
                .attributes
                .get("arn")
                .and_then(Value::as_str)
                .unwrap_or_default();
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.dynamodb.untag_resource().resource_arn(arn),
                tag: cx.dynamodb.tag_resource().resource_arn(arn),
                tags: aws_tags,
            )
            .await?;
        }
        Ok(())
    }

    /// The table after a create or update, read back for its attributes.
    async fn settled(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
        fields: Fields,
    ) -> Result<Observed, ProviderError> {
        let d = describe(&cx.dynamodb, name).await?.ok_or_else(|| {
            ProviderError::NotFound(format!(
                "{}: the table {name} is not described right after the change; run plan again",
                want.address
            ))
        })?;
        Ok(Observed {
            id: name.to_string(),
            fields,
            attributes: attributes_of(&d),
            tags: want.tags.clone(),
        })
    }
}

async fn set_pitr(cx: &Cx, a: &str, table: &str, on: bool) -> Result<(), ProviderError> {
    cx.dynamodb
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(b(PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(on)
            .build())?)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| at(a, "UpdateContinuousBackups", e.into()))
}

async fn set_ttl(cx: &Cx, a: &str, table: &str, attr: &str, on: bool) -> Result<(), ProviderError> {
    cx.dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(b(TimeToLiveSpecification::builder()
            .enabled(on)
            .attribute_name(attr)
            .build())?)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| at(a, "UpdateTimeToLive", e.into()))
}

#[async_trait]
impl Provider for DynamodbTable {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    fn deletion_guard(&self) -> Option<&'static str> {
        Some("deletion_protection_enabled")
    }

    /// Table names are unique in the region: only a renamed table can exist
    /// beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "name")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let key = OnceCell::new();
        let key = &key;
        let reads = ids.iter().map(|id| read(cx, id, key)).collect();
        Ok(by_id(each(reads).await?))
    }

    /// Time to live is read only for tables that declare it: left out, it is
    /// not managed, and a no-op plan should not pay for it.
    async fn observe_against_desired(
        &self,
        cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        observe_declared(
            items,
            "ttl_attribute",
            |_| true,
            |table| async move { Ok(ttl(cx, &table).await?.map(Value::str)) },
        )
        .await
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    /// One Tagging API listing of the stack's tables, then a read of each copy
    /// for the addresses asked, time to live included (an adoption is compared
    /// before any other observation).
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let key = OnceCell::new();
        let key = &key;
        let reads = tagged_names(cx, addresses)
            .await?
            .into_iter()
            .map(|(name, address)| async move {
                let Some(mut o) = read(cx, &name, key).await? else {
                    return Ok(None);
                };
                if let Some(a) = ttl(cx, &name).await? {
                    o.fields.insert("ttl_attribute".into(), Value::str(a));
                }
                Ok(Some((address, o)))
            })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let (f, a) = (want.fields, want.address);
        crate::kit::fields::refuse(a, problems(f))?;
        let name = str_of(f, "name").unwrap_or_default();
        let w = self.waiter(cx, a, name, Some(f))?;
        let provisioned = str_of(f, "billing_mode") == Some("PROVISIONED");
        let types = attribute_types(f);
        let gsis = gsis_of(f);
        let mut gsi_list = Vec::new();
        for g in &gsis {
            let mut x = GlobalSecondaryIndex::builder()
                .index_name(&g.name)
                .set_key_schema(Some(key_schema(&g.hash_key, g.range_key.as_deref())?))
                .projection(projection(&g.projection_type, &g.non_key_attributes));
            if let (true, Some(r), Some(wc)) = (provisioned, g.read, g.write) {
                x = x.provisioned_throughput(throughput(r, wc)?);
            }
            gsi_list.push(b(x.build())?);
        }
        let hash = str_of(f, "hash_key").unwrap_or_default();
        let mut lsi_list = Vec::new();
        for m in maps(f, "local_secondary_indexes") {
            let mut nka = m
                .get("non_key_attributes")
                .map(Value::str_list)
                .unwrap_or_default();
            nka.sort();
            lsi_list.push(b(LocalSecondaryIndex::builder()
                .index_name(text(m, "name").unwrap_or_default())
                .set_key_schema(Some(key_schema(hash, text(m, "range_key").as_deref())?))
                .projection(projection(
                    text(m, "projection_type").as_deref().unwrap_or("ALL"),
                    &nka,
                ))
                .build())?);
        }
        let enc = str_of(f, "encryption").unwrap_or("AWS_OWNED");
        let mut req = cx
            .dynamodb
            .create_table()
            .table_name(name)
            .set_key_schema(Some(key_schema(hash, str_of(f, "range_key"))?))
            .set_attribute_definitions(Some(definitions(&types, &keys_used(f, &gsis))?))
            .billing_mode(BillingMode::from(
                str_of(f, "billing_mode").unwrap_or("PAY_PER_REQUEST"),
            ))
            .set_global_secondary_indexes((!gsi_list.is_empty()).then_some(gsi_list))
            .set_local_secondary_indexes((!lsi_list.is_empty()).then_some(lsi_list))
            .deletion_protection_enabled(bool_of(f, "deletion_protection_enabled").unwrap_or(false))
            .table_class(TableClass::from(
                str_of(f, "table_class").unwrap_or("STANDARD"),
            ))
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(aws_tags(want.tags)?));
        if enc != "AWS_OWNED" {
            req = req.sse_specification(sse_spec(enc, str_of(f, "kms_key_arn")));
        }
        if let (true, Some(r), Some(wc)) = (
            provisioned,
            f.get("read_capacity").and_then(Value::as_int),
            f.get("write_capacity").and_then(Value::as_int),
        ) {
            req = req.provisioned_throughput(throughput(r, wc)?);
        }
        if let Some(view) = str_of(f, "stream_view_type") {
            req = req.stream_specification(b(StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build())?);
        }
        match req.send().await.map_err(ProviderError::from_sdk) {
            Ok(_) => {}
            Err(e @ ProviderError::Conflict(_)) => {
                // The name is taken: this address's own copy from an
                // interrupted apply is taken over and brought to `want`.
                let key = OnceCell::new();
                let found = match read(cx, name, &key).await? {
                    Some(mut o) => {
                        if let Some(t) = ttl(cx, name).await? {
                            o.fields.insert("ttl_attribute".into(), Value::str(t));
                        }
                        Some(o)
                    }
                    None => None,
                };
                let live = take_over(
                    cx,
                    want,
                    "a DynamoDB table",
                    name,
                    found,
                    at(a, "CreateTable", e),
                )?;
                w.wait(Goal::Settled(None), "create").await?;
                let changes: Vec<FieldChange> = changes_to(self, want, &live)
                    .into_iter()
                    .filter(|c| !c.forces_replace)
                    .collect();
                self.sync(cx, &live, want, &changes).await?;
                return self.settled(cx, want, name, f.clone()).await;
            }
            Err(e) => return Err(at(a, "CreateTable", e)),
        }
        w.wait(Goal::Settled(None), "create").await?;
        if bool_of(f, "point_in_time_recovery") == Some(true) {
            set_pitr(cx, a, name, true).await?;
        }
        if let Some(attr) = str_of(f, "ttl_attribute") {
            set_ttl(cx, a, name, attr, true).await?;
        }
        self.settled(cx, want, name, f.clone()).await
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.sync(cx, live, want, changes).await?;
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        self.settled(cx, want, &live.id, fields).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Deletes and waits until the table is gone, so that a replacement can
    /// take its name at once.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let address = format!("dynamodb_table {id} (stack {})", cx.stack);
        gone_is_done(cx.dynamodb.delete_table().table_name(id).send().await)
            .map_err(|e| at(&address, "DeleteTable", e))?;
        self.waiter(cx, &address, id, applied)?
            .wait(Goal::Gone, "delete")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn attr(name: &str, ty: &str) -> Value {
        Value::Map(fields_of([
            ("name", Value::str(name)),
            ("type", Value::str(ty)),
        ]))
    }

    fn gsi(name: &str, hash: &str, projection: &str, cap: Option<(i64, i64)>) -> Gsi {
        Gsi {
            name: name.into(),
            hash_key: hash.into(),
            range_key: None,
            projection_type: projection.into(),
            non_key_attributes: vec![],
            read: cap.map(|c| c.0),
            write: cap.map(|c| c.1),
        }
    }

    /// A valid on-demand table keyed `pk`/`sk` with one index on `g`.
    fn table() -> Fields {
        fields_of([
            ("name", Value::str("orders")),
            ("hash_key", Value::str("pk")),
            ("range_key", Value::str("sk")),
            (
                "attributes",
                Value::List(vec![attr("pk", "S"), attr("sk", "S"), attr("g", "N")]),
            ),
            ("billing_mode", Value::str("PAY_PER_REQUEST")),
            (
                "global_secondary_indexes",
                Value::List(vec![gsi("by-g", "g", "ALL", None).to_value()]),
            ),
            ("encryption", Value::str("AWS_OWNED")),
        ])
    }

    fn messages(f: &Fields) -> Vec<String> {
        problems(f).into_iter().map(|(_, m, _)| m).collect()
    }

    #[test]
    fn a_valid_table_has_no_problems() {
        assert!(messages(&table()).is_empty(), "{:?}", messages(&table()));
    }

    #[test]
    fn every_key_must_be_declared_and_every_declared_attribute_used() {
        let mut f = table();
        f.insert(
            "global_secondary_indexes".into(),
            Value::List(vec![gsi("by-h", "h", "ALL", None).to_value()]),
        );
        let m = messages(&f);
        assert!(
            m.iter()
                .any(|m| m.contains("a key of index `by-h` `h` is not a declared attribute")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("attribute `g` is declared but no key")),
            "{m:?}"
        );
        let mut f = table();
        f.insert(
            "attributes".into(),
            Value::List(vec![
                attr("pk", "S"),
                attr("sk", "S"),
                attr("g", "N"),
                attr("pk", "N"),
            ]),
        );
        assert!(messages(&f)[0].contains("`pk` is declared twice"));
        let mut f = table();
        f.insert("range_key".into(), Value::str("when"));
        assert!(messages(&f)[0].contains("the table's range_key `when` is not a declared"));
    }

    #[test]
    fn capacities_go_with_provisioned_tables_only() {
        let mut f = table();
        f.insert("billing_mode".into(), Value::str("PROVISIONED"));
        let m = messages(&f);
        assert!(
            m.iter()
                .any(|m| m.contains("a PROVISIONED table needs `read_capacity`")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("index `by-g` of a PROVISIONED table needs")),
            "{m:?}"
        );
        f.insert("read_capacity".into(), Value::Int(5));
        f.insert("write_capacity".into(), Value::Int(5));
        f.insert(
            "global_secondary_indexes".into(),
            Value::List(vec![gsi("by-g", "g", "ALL", Some((1, 1))).to_value()]),
        );
        assert!(messages(&f).is_empty(), "{:?}", messages(&f));
        let mut f = table();
        f.insert(
            "global_secondary_indexes".into(),
            Value::List(vec![gsi("by-g", "g", "ALL", Some((1, 1))).to_value()]),
        );
        f.insert("read_capacity".into(), Value::Int(5));
        let m = messages(&f);
        assert!(
            m.iter()
                .any(|m| m.contains("has capacities, but the table is on demand")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("`read_capacity` is for PROVISIONED")),
            "{m:?}"
        );
    }

    #[test]
    fn keys_and_projections_fit_the_encryption_and_index_kind() {
        let mut f = table();
        f.insert(
            "kms_key_arn".into(),
            Value::str("arn:aws:kms:us-east-1:1:key/x"),
        );
        assert!(messages(&f)[0].contains("only used with encryption = \"CUSTOMER_MANAGED\""));
        f.insert("encryption".into(), Value::str("CUSTOMER_MANAGED"));
        assert!(messages(&f).is_empty());
        f.shift_remove("kms_key_arn");
        assert!(messages(&f)[0].contains("needs `kms_key_arn`"));

        let mut f = table();
        let mut g = gsi("by-g", "g", "KEYS_ONLY", None);
        g.non_key_attributes = vec!["total".into()];
        f.insert(
            "global_secondary_indexes".into(),
            Value::List(vec![g.to_value()]),
        );
        assert!(messages(&f)[0].contains("lists non_key_attributes with projection KEYS_ONLY"));
        g.projection_type = "INCLUDE".into();
        f.insert(
            "global_secondary_indexes".into(),
            Value::List(vec![g.to_value()]),
        );
        assert!(messages(&f).is_empty());

        let mut f = table();
        f.shift_remove("range_key");
        f.insert(
            "attributes".into(),
            Value::List(vec![attr("pk", "S"), attr("g", "N"), attr("l", "S")]),
        );
        f.insert(
            "local_secondary_indexes".into(),
            Value::List(vec![Value::Map(fields_of([
                ("name", Value::str("by-l")),
                ("range_key", Value::str("l")),
                ("projection_type", Value::str("ALL")),
            ]))]),
        );
        assert!(messages(&f)[0].contains("need a table with a range_key"));
    }

    #[test]
    fn index_steps_delete_first_then_update_then_create() {
        let types: BTreeMap<String, String> = [("a", "S"), ("b", "S"), ("c", "N"), ("d", "S")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let live = vec![
            gsi("keep", "a", "ALL", Some((1, 1))),
            gsi("gone", "b", "ALL", Some((1, 1))),
            gsi("reproject", "c", "ALL", Some((1, 1))),
        ];
        let want = vec![
            gsi("keep", "a", "ALL", Some((5, 2))),
            gsi("reproject", "c", "KEYS_ONLY", Some((1, 1))),
            gsi("new", "d", "ALL", Some((1, 1))),
        ];
        assert_eq!(
            gsi_steps(&live, &want, &types, &types),
            vec![
                Step::Delete("gone".into()),
                Step::Delete("reproject".into()),
                Step::Update {
                    name: "keep".into(),
                    read: 5,
                    write: 2
                },
                Step::Create(want[2].clone()),
                Step::Create(want[1].clone()),
            ]
        );
        // Nothing to do when they match, capacities left out (on demand) included.
        let same = vec![gsi("keep", "a", "ALL", None)];
        assert!(gsi_steps(&same, &same, &types, &types).is_empty());
        // A key attribute changing type re-creates its index.
        let mut other = types.clone();
        other.insert("a".into(), "N".into());
        assert_eq!(
            gsi_steps(&same, &same, &types, &other),
            vec![Step::Delete("keep".into()), Step::Create(same[0].clone())]
        );
        // Included attributes compare as a set.
        let mut x = gsi("inc", "a", "INCLUDE", None);
        x.non_key_attributes = vec!["p".into(), "q".into()];
        let y = Gsi::of(x.to_value().as_map().unwrap());
        assert!(gsi_steps(&[x], &[y], &types, &types).is_empty());
    }

    #[test]
    fn encryption_reads_back_as_declared() {
        let aws_key = "arn:aws:kms:us-east-1:1:key/aws-managed";
        let sse = |status: SseStatus, key: Option<&str>| {
            SseDescription::builder()
                .status(status)
                .sse_type(SseType::Kms)
                .set_kms_master_key_arn(key.map(str::to_string))
                .build()
        };
        assert_eq!(sse_of(None, Some(aws_key)), ("AWS_OWNED".into(), None));
        assert_eq!(
            sse_of(Some(&sse(SseStatus::Disabled, None)), None),
            ("AWS_OWNED".into(), None)
        );
        assert_eq!(
            sse_of(Some(&sse(SseStatus::Enabled, Some(aws_key))), Some(aws_key)),
            ("AWS_MANAGED".into(), None)
        );
        let mine = "arn:aws:kms:us-east-1:1:key/mine";
        assert_eq!(
            sse_of(Some(&sse(SseStatus::Enabled, Some(mine))), Some(aws_key)),
            ("CUSTOMER_MANAGED".into(), Some(mine.to_string()))
        );
        let s = sse_spec("AWS_MANAGED", None);
        assert_eq!((s.enabled(), s.kms_master_key_id()), (Some(true), None));
        let s = sse_spec("CUSTOMER_MANAGED", Some(mine));
        assert_eq!(s.kms_master_key_id(), Some(mine));
        assert_eq!(sse_spec("AWS_OWNED", None).enabled(), Some(false));
    }

    #[test]
    fn a_described_table_observes_as_declared() {
        use aws_sdk_dynamodb::types::{
            BillingModeSummary, GlobalSecondaryIndexDescription, IndexStatus,
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .unwrap()
        };
        let def = |n: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(t)
                .build()
                .unwrap()
        };
        let d = TableDescription::builder()
            .table_name("orders")
            .table_status(TableStatus::Active)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(def("pk", ScalarAttributeType::S))
            .attribute_definitions(def("sk", ScalarAttributeType::S))
            .attribute_definitions(def("g", ScalarAttributeType::N))
            // Left over from a deleted index, as the emulator keeps it.
            .attribute_definitions(def("old", ScalarAttributeType::S))
            .billing_mode_summary(
                BillingModeSummary::builder()
                    .billing_mode(BillingMode::PayPerRequest)
                    .build(),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndexDescription::builder()
                    .index_name("by-g")
                    .key_schema(key("g", KeyType::Hash))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .index_status(IndexStatus::Active)
                    .build(),
            )
            .deletion_protection_enabled(false)
            .build();
        let mut live = fields_of_table(&d, None);
        live.insert("point_in_time_recovery".into(), Value::Bool(false));
        let mut want = table();
        want.insert("point_in_time_recovery".into(), Value::Bool(false));
        want.insert("deletion_protection_enabled".into(), Value::Bool(false));
        want.insert("table_class".into(), Value::str("STANDARD"));
        assert!(
            DynamodbTable.diff(&want, &live).is_empty(),
            "{:?}",
            DynamodbTable.diff(&want, &live)
        );
        // A stream turned on outside reconcile is drift.
        want.insert("stream_view_type".into(), Value::str("KEYS_ONLY"));
        let d = DynamodbTable.diff(&want, &live);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "stream_view_type");
    }

    mod staged {
        use super::*;
        use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
        use aws_sdk_dynamodb::operation::update_table::UpdateTableOutput;
        use aws_sdk_dynamodb::types::{GlobalSecondaryIndexDescription, IndexStatus};
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use std::sync::{Arc, Mutex};

        fn described(indexes: &[(&str, IndexStatus)]) -> DescribeTableOutput {
            let mut t = TableDescription::builder()
                .table_name("orders")
                .table_status(TableStatus::Active);
            for (name, status) in indexes {
                t = t.global_secondary_indexes(
                    GlobalSecondaryIndexDescription::builder()
                        .index_name(*name)
                        .index_status(status.clone())
                        .build(),
                );
            }
            DescribeTableOutput::builder().table(t.build()).build()
        }

        fn sink() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            (
                StatusSink::new(move |_, st| s.lock().unwrap().push(st.to_string())),
                seen,
            )
        }

        fn waiter<'a>(client: &'a Client, status: &'a StatusSink, update: Duration) -> Waiter<'a> {
            Waiter {
                client,
                address: "dynamodb_table.orders",
                table: "orders",
                status,
                timeouts: Timeouts {
                    create: update,
                    update,
                    delete: update,
                },
                backoff: Backoff {
                    first: Duration::from_millis(1),
                    max: Duration::from_millis(4),
                },
            }
        }

        #[tokio::test]
        async fn each_index_step_waits_until_the_table_settles_before_the_next() {
            let delete = mock!(Client::update_table)
                .match_requests(|r| {
                    r.global_secondary_index_updates()[0]
                        .delete()
                        .is_some_and(|d| d.index_name() == "old")
                })
                .then_output(|| UpdateTableOutput::builder().build());
            let deleting = mock!(Client::describe_table)
                .sequence()
                .output(|| described(&[("old", IndexStatus::Deleting)]))
                .times(2)
                .output(|| described(&[]))
                .build();
            let create = mock!(Client::update_table)
                .match_requests(|r| {
                    r.global_secondary_index_updates()[0]
                        .create()
                        .is_some_and(|c| c.index_name() == "new")
                        && r.attribute_definitions().len() == 2
                })
                .then_output(|| UpdateTableOutput::builder().build());
            let creating = mock!(Client::describe_table)
                .sequence()
                .output(|| described(&[("new", IndexStatus::Creating)]))
                .times(2)
                .output(|| described(&[("new", IndexStatus::Active)]))
                .build();
            let client = mock_client!(
                aws_sdk_dynamodb,
                RuleMode::Sequential,
                [&delete, &deleting, &create, &creating]
            );
            let (status, seen) = sink();
            let w = waiter(&client, &status, Duration::from_secs(10));
            let new = gsi("new", "g", "ALL", None);
            let steps = vec![Step::Delete("old".into()), Step::Create(new)];
            let defs = |_: &Gsi| {
                let types: BTreeMap<String, String> = [
                    ("pk".to_string(), "S".to_string()),
                    ("g".to_string(), "N".to_string()),
                ]
                .into();
                definitions(&types, &["pk".to_string(), "g".to_string()].into())
            };
            w.run_steps(&steps, false, &defs).await.unwrap();
            // Sequential rules: the create could only come after the deleting index was gone.
            assert_eq!(
                (
                    delete.num_calls(),
                    deleting.num_calls(),
                    create.num_calls(),
                    creating.num_calls()
                ),
                (1, 3, 1, 3)
            );
            assert_eq!(
                *seen.lock().unwrap(),
                [
                    "index old DELETING",
                    "ACTIVE",
                    "index new CREATING",
                    "ACTIVE"
                ]
            );
        }

        #[tokio::test]
        async fn an_index_that_never_settles_times_out_naming_it_and_the_setting() {
            let create =
                mock!(Client::update_table).then_output(|| UpdateTableOutput::builder().build());
            let creating = mock!(Client::describe_table)
                .sequence()
                .output(|| described(&[("new", IndexStatus::Creating)]))
                .repeatedly()
                .build();
            let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&create, &creating]);
            let (status, _) = sink();
            let w = waiter(&client, &status, Duration::from_millis(30));
            let steps = vec![Step::Create(gsi("new", "g", "ALL", None))];
            let started = std::time::Instant::now();
            let e = w
                .run_steps(&steps, false, &|_| Ok(vec![]))
                .await
                .unwrap_err()
                .to_string();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(e.contains("dynamodb_table.orders"), "{e}");
            assert!(e.contains("`index new CREATING`"), "{e}");
            assert!(e.contains("timeouts.update"), "{e}");
            assert!(e.contains("takes the remaining steps"), "{e}");
        }

        #[tokio::test]
        async fn a_delete_waits_until_the_table_is_gone() {
            use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
            use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
            let gone = mock!(Client::describe_table)
                .sequence()
                .output(|| {
                    DescribeTableOutput::builder()
                        .table(
                            TableDescription::builder()
                                .table_name("orders")
                                .table_status(TableStatus::Deleting)
                                .build(),
                        )
                        .build()
                })
                .times(2)
                .error(|| {
                    DescribeTableError::ResourceNotFoundException(
                        ResourceNotFoundException::builder()
                            .message("Requested resource not found")
                            .meta(
                                aws_smithy_types::error::ErrorMetadata::builder()
                                    .code("ResourceNotFoundException")
                                    .build(),
                            )
                            .build(),
                    )
                })
                .build();
            let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&gone]);
            let (status, seen) = sink();
            let w = waiter(&client, &status, Duration::from_secs(10));
            w.wait(Goal::Gone, "delete").await.unwrap();
            assert_eq!(*seen.lock().unwrap(), ["DELETING", "deleted"]);
        }
    }
}
