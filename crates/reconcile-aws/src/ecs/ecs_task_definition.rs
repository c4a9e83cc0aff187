//! `ecs_task_definition`: an ECS task definition revision (Fargate by default).
//!
//! Revisions are immutable: every field forces a replacement, which registers a
//! new revision first, moves dependents (the service) onto its ARN, and only
//! then deregisters the old one. Deregistered revisions stay INACTIVE in AWS as
//! history (a rollback or an audit can still read them); they read as gone.
//!
//! What ECS echoes back is normalised before comparing, so a second plan is
//! clean: defaults it fills in (`essential`, `cpu = 0`, empty lists, the
//! health check's interval/timeout/retries, `hostPort` in awsvpc) and the
//! "1 vCPU" / "2 GB" spellings of task sizes.

use crate::ecs::{
    self, ecs_error, fields_of, int_value, map_value, named, some_fields_of, str_map,
};
use crate::kit::fields::{i32_of, str_list, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, HealthCheck, KeyValuePair,
    LogConfiguration, LogDriver, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret,
    TaskDefinition, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use indexmap::IndexMap;
use reconcile_core::diff::normal_form;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, HashMap};

pub struct EcsTaskDefinition;

/// DescribeTaskDefinition calls in flight at once (it takes one ARN per call).
const PARALLEL_DESCRIBES: usize = 8;

const PORT_FIELDS: &[Field] = &[
    Field::new(
        "container_port",
        Ty::Int,
        "The port the container listens on.",
    )
    .required()
    .range(1, 65535),
    Field::new("protocol", Ty::Enum(&["tcp", "udp"]), "tcp or udp.")
        .default(Default::Str("tcp"))
        .norm(Norm::Case),
];

const HEALTH_FIELDS: &[Field] = &[
    Field::new(
        "command",
        Ty::List(&Ty::Str),
        "The check, like [\"CMD-SHELL\", \"curl -f http://localhost:8080/health/ready || exit 1\"]; \
         the first item is CMD, CMD-SHELL or NONE.",
    )
    .required(),
    // ECS echoes these defaults back when they are left out.
    Field::new("interval", Ty::Int, "Seconds between checks.")
        .range(5, 300)
        .default(Default::Int(30)),
    Field::new("timeout", Ty::Int, "Seconds a check may take.")
        .range(2, 60)
        .default(Default::Int(5)),
    Field::new(
        "retries",
        Ty::Int,
        "Failures in a row that make the container unhealthy.",
    )
    .range(1, 10)
    .default(Default::Int(3)),
    Field::new(
        "start_period",
        Ty::Int,
        "Grace seconds after start during which failures do not count.",
    )
    .range(0, 300)
    .default(Default::Int(0)),
];

pub const LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "awsfirelens",
    "splunk",
    "fluentd",
    "gelf",
    "json-file",
    "journald",
    "syslog",
];

const LOG_FIELDS: &[Field] = &[
    Field::new(
        "log_driver",
        Ty::Enum(LOG_DRIVERS),
        "The log driver; Fargate takes awslogs, awsfirelens or splunk.",
    )
    .required(),
    Field::new(
        "options",
        Ty::Map(&Ty::Str),
        "Driver options, like { \"awslogs-group\" = \"/ecs/keycloak\", \"awslogs-region\" = \
         \"us-east-1\", \"awslogs-stream-prefix\" = \"keycloak\" }.",
    ),
];

const CONTAINER_FIELDS: &[Field] = &[
    Field::new("name", Ty::Str, "The container name, unique in the task.").required(),
    Field::new(
        "image",
        Ty::Str,
        "The image, like \"quay.io/keycloak/keycloak:26.5\" or an ECR URI.",
    )
    .required(),
    Field::new(
        "essential",
        Ty::Bool,
        "Whether the task stops when this container stops.",
    )
    .default(Default::Bool(true)),
    Field::new(
        "command",
        Ty::List(&Ty::Str),
        "The command, replacing the image's CMD.",
    ),
    Field::new(
        "entry_point",
        Ty::List(&Ty::Str),
        "The entry point, replacing the image's ENTRYPOINT.",
    ),
    Field::new(
        "port_mappings",
        Ty::List(&Ty::Object(PORT_FIELDS)),
        "Ports the container listens on: [{ container_port = 8080 }] (the host port equals it \
         in awsvpc mode).",
    )
    .set(),
    Field::new(
        "environment",
        Ty::Map(&Ty::Str),
        "Plain environment variables, { KEY = \"value\" }; sent as name/value pairs, compared \
         without order. Never put secrets here: use `secrets`.",
    ),
    Field::new(
        "secrets",
        Ty::Map(&Ty::Str),
        "Environment variables ECS reads from Secrets Manager or SSM at start: { ENV_NAME = \
         \"${secret.db.arn}:password::\" } (a JSON key of a secret: ARN:KEY::). Only the \
         references are stored, never the values.",
    ),
    Field::new(
        "health_check",
        Ty::Object(HEALTH_FIELDS),
        "The container health check.",
    ),
    Field::new(
        "log_configuration",
        Ty::Object(LOG_FIELDS),
        "Where the container's output goes.",
    ),
    Field::new(
        "cpu",
        Ty::Int,
        "CPU units reserved for the container (1024 = 1 vCPU).",
    ),
    Field::new(
        "memory",
        Ty::Int,
        "Hard memory limit in MiB: the container is killed above it.",
    ),
    Field::new("memory_reservation", Ty::Int, "Soft memory limit in MiB."),
];

const RUNTIME_FIELDS: &[Field] = &[
    Field::new(
        "operating_system_family",
        Ty::Str,
        "LINUX (default on Fargate) or a WINDOWS_SERVER_* family.",
    ),
    Field::new(
        "cpu_architecture",
        Ty::Enum(&["X86_64", "ARM64"]),
        "X86_64 or ARM64 (Graviton).",
    ),
];

fn check_family(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a task definition family: use 1 to 255 letters, digits, hyphens and underscores"
        ))
    }
}

fn check_cpu(s: &str) -> Result<(), String> {
    task_units(s, "vcpu").map(|_| ()).ok_or_else(|| {
        format!("\"{s}\" is not a task CPU size: write CPU units like \"1024\" or \"1 vCPU\"")
    })
}

fn check_memory(s: &str) -> Result<(), String> {
    task_units(s, "gb").map(|_| ()).ok_or_else(|| {
        format!("\"{s}\" is not a task memory size: write MiB like \"2048\" or \"2 GB\"")
    })
}

fn cpu_units(v: &Value, _: &Fields) -> Value {
    in_units(v, "vcpu")
}

fn memory_units(v: &Value, _: &Fields) -> Value {
    in_units(v, "gb")
}

fn in_units(v: &Value, unit: &str) -> Value {
    match v.as_str().and_then(|s| task_units(s, unit)) {
        Some(u) => Value::Str(u),
        None => v.clone(),
    }
}

/// A task size in ECS's own units: "1024" stays, "1 vCPU" / "2 GB" become
/// "1024" / "2048" (ECS stores and answers the units). `None` if unreadable.
pub fn task_units(s: &str, unit: &str) -> Option<String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Some(t.trim_start_matches('0').to_string()).filter(|x| !x.is_empty());
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix(unit)?.trim();
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    let units = n * 1024.0;
    (units.fract() == 0.0).then(|| format!("{}", units as i64))
}

pub static SCHEMA: Schema = Schema {
    kind: "ecs_task_definition",
    doc: "An ECS task definition revision (Fargate by default). Immutable: a change to any \
          field registers a new revision before the old one is deregistered, and services \
          referencing `arn` move to it in place; only tags change in place. ECS has no batch \
          describe for task definitions: observing costs one DescribeTaskDefinition (tags \
          included) per tracked revision.",
    fields: &[
        Field::new(
            "family",
            Ty::Pattern(check_family),
            "The family name; each registration adds a revision to it. Changing it replaces \
             (registers anew).",
        )
        .required()
        .force_new(),
        Field::new(
            "cpu",
            Ty::Pattern(check_cpu),
            "Task CPU units as a string, like \"1024\" (or \"1 vCPU\"); Fargate needs it, in one \
             of its sizes (256, 512, 1024, 2048, 4096, 8192, 16384). Changing it registers a new revision.",
        )
        .norm(Norm::With(cpu_units))
        .force_new(),
        Field::new(
            "memory",
            Ty::Pattern(check_memory),
            "Task memory in MiB as a string, like \"2048\" (or \"2 GB\"); Fargate needs it, in a \
             size its cpu allows. Changing it registers a new revision.",
        )
        .norm(Norm::With(memory_units))
        .force_new(),
        Field::new(
            "network_mode",
            Ty::Enum(&["awsvpc", "bridge", "host", "none"]),
            "The network mode; Fargate takes only awsvpc. Changing it registers a new revision.",
        )
        .default(Default::Str("awsvpc"))
        .force_new(),
        Field::new(
            "requires_compatibilities",
            Ty::List(&Ty::Enum(&["FARGATE", "EC2", "EXTERNAL"])),
            "Launch types the task must be valid for, compared as a set. Changing it registers \
             a new revision.",
        )
        .default(Default::Strs(&["FARGATE"]))
        .set()
        .force_new(),
        Field::new(
            "execution_role_arn",
            Ty::Str,
            "The role ECS uses to pull the image, write logs and read `secrets`. Changing it \
             registers a new revision; left out, the revision has none.",
        )
        .absent_clears()
        .force_new(),
        Field::new(
            "task_role_arn",
            Ty::Str,
            "The role the containers' code runs as. Changing it registers a new revision; left \
             out, the revision has none.",
        )
        .absent_clears()
        .force_new(),
        Field::new(
            "runtime_platform",
            Ty::Object(RUNTIME_FIELDS),
            "{ operating_system_family = \"LINUX\", cpu_architecture = \"ARM64\" }. Changing it \
             registers a new revision.",
        )
        .force_new(),
        Field::new(
            "containers",
            Ty::List(&Ty::Object(CONTAINER_FIELDS)),
            "The containers, in order: { name, image, essential, command, entry_point, \
             port_mappings, environment, secrets, health_check, log_configuration, cpu, memory, \
             memory_reservation }. Changing anything registers a new revision.",
        )
        .required()
        .force_new(),
    ],
    attributes: &[
        ("id", "The task definition ARN with its revision."),
        ("arn", "The task definition ARN with its revision (family:N), for a service's `task_definition`."),
        ("family", "The family name."),
        ("revision", "The revision number."),
    ],
    taggable: true,
};

// ---------------------------------------------------------------------------
// Observing.

fn container_value(cd: &ContainerDefinition) -> Value {
    let ports = cd.port_mappings().iter().map(|p| {
        Value::Map(fields_of([
            (
                "container_port",
                Value::Int(p.container_port().unwrap_or(0).into()),
            ),
            (
                "protocol",
                Value::str(p.protocol().map_or("tcp", |p| p.as_str())),
            ),
        ]))
    });
    let env = cd.environment().iter().filter_map(|kv| {
        Some((
            kv.name()?.to_string(),
            kv.value().unwrap_or_default().to_string(),
        ))
    });
    let secrets = cd.secrets().iter();
    let secrets = secrets.map(|s| (s.name().to_string(), s.value_from().to_string()));
    let health = cd.health_check().map(|h| {
        Value::Map(some_fields_of([
            ("command", Some(str_list(h.command()))),
            ("interval", int_value(h.interval())),
            ("timeout", int_value(h.timeout())),
            ("retries", int_value(h.retries())),
            ("start_period", int_value(h.start_period())),
        ]))
    });
    let logs = cd.log_configuration().map(|l| {
        let opts = l.options().into_iter().flatten();
        Value::Map(fields_of([
            ("log_driver", Value::str(l.log_driver().as_str())),
            (
                "options",
                map_value(opts.map(|(k, v)| (k.clone(), v.clone()))),
            ),
        ]))
    });
    Value::Map(some_fields_of([
        ("name", Some(Value::str(cd.name().unwrap_or_default()))),
        ("image", Some(Value::str(cd.image().unwrap_or_default()))),
        (
            "essential",
            Some(Value::Bool(cd.essential().unwrap_or(true))),
        ),
        ("command", Some(str_list(cd.command()))),
        ("entry_point", Some(str_list(cd.entry_point()))),
        ("port_mappings", Some(Value::List(ports.collect()))),
        ("environment", Some(map_value(env))),
        ("secrets", Some(map_value(secrets))),
        ("health_check", health),
        ("log_configuration", logs),
        // ECS answers 0 for a container without a CPU reservation.
        ("cpu", int_value(Some(cd.cpu()).filter(|c| *c != 0))),
        ("memory", int_value(cd.memory())),
        ("memory_reservation", int_value(cd.memory_reservation())),
    ]))
}

fn observed(td: &TaskDefinition, tags: &[aws_sdk_ecs::types::Tag]) -> Option<Observed> {
    use TaskDefinitionStatus::{DeleteInProgress, Inactive};
    if matches!(td.status(), Some(Inactive | DeleteInProgress)) {
        return None;
    }
    let arn = td.task_definition_arn()?.to_string();
    let family = td.family().unwrap_or_default();
    let units = |s: &str, unit| Value::str(task_units(s, unit).unwrap_or(s.into()));
    let enum_value = |s: &str| Some(Value::str(s));
    let runtime = td.runtime_platform().map(|rp| {
        Value::Map(some_fields_of([
            (
                "operating_system_family",
                rp.operating_system_family()
                    .and_then(|os| enum_value(os.as_str())),
            ),
            (
                "cpu_architecture",
                rp.cpu_architecture().and_then(|a| enum_value(a.as_str())),
            ),
        ]))
    });
    let compat = td.requires_compatibilities().iter().map(|c| c.as_str());
    let containers = td.container_definitions().iter().map(container_value);
    let f = some_fields_of([
        ("family", Some(Value::str(family))),
        ("cpu", td.cpu().map(|c| units(c, "vcpu"))),
        ("memory", td.memory().map(|m| units(m, "gb"))),
        (
            "network_mode",
            td.network_mode().and_then(|n| enum_value(n.as_str())),
        ),
        ("requires_compatibilities", Some(str_list(compat))),
        (
            "execution_role_arn",
            td.execution_role_arn().map(Value::str),
        ),
        ("task_role_arn", td.task_role_arn().map(Value::str)),
        ("runtime_platform", runtime),
        ("containers", Some(Value::List(containers.collect()))),
    ]);
    Some(Observed {
        fields: normal_form(&SCHEMA, &f),
        attributes: fields_of([
            ("id", Value::str(&arn)),
            ("arn", Value::str(&arn)),
            ("family", Value::str(family)),
            ("revision", Value::Int(td.revision().into())),
        ]),
        id: arn,
        tags: ecs::tags_of(tags),
    })
}

/// One revision by ARN (or family:revision), tags included; `None` when gone
/// or deregistered.
async fn describe_one(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let out = cx
        .ecs
        .describe_task_definition()
        .task_definition(id)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(ecs_error);
    match out {
        Ok(o) => Ok(o.task_definition().and_then(|td| observed(td, o.tags()))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Many revisions, a few calls in flight at once; answers keyed by the id asked with.
async fn describe_many(
    cx: &Cx,
    ids: &[String],
) -> Result<HashMap<String, Observed>, ProviderError> {
    stream::iter(ids.iter().cloned())
        .map(|id| async move { describe_one(cx, &id).await.map(|o| (id, o)) })
        .buffer_unordered(PARALLEL_DESCRIBES)
        .try_filter_map(|(id, o)| async move { Ok(o.map(|o| (id, o))) })
        .try_collect()
        .await
}

// ---------------------------------------------------------------------------
// Validation.

fn literal(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.contains("${"))
}

/// Memory sizes (MiB) Fargate allows for each task CPU size.
fn fargate_memory_ok(cpu: i64, mem: i64) -> Option<bool> {
    let (lo, hi, step) = match cpu {
        256 => return Some([512, 1024, 2048].contains(&mem)),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some(mem >= lo && mem <= hi && (mem - lo) % step == 0)
}

/// Problems in one declaration, by field (`None`: the whole resource).
pub fn problems(f: &Fields) -> Vec<(Option<&'static str>, String, String)> {
    let mut out = Vec::new();
    let mut flag = |field, msg: String, help: &str| out.push((field, msg, help.to_string()));
    let fargate = match f.get("requires_compatibilities") {
        Some(v) => v.str_list().iter().any(|c| c == "FARGATE"),
        None => true,
    };
    let task_memory = f.contains_key("memory");
    if fargate {
        for (k, example) in [("cpu", "1024"), ("memory", "2048")] {
            if !f.contains_key(k) {
                let msg = format!("a Fargate task definition needs a task-level `{k}`");
                flag(None, msg, &format!("add `{k} = \"{example}\"`"));
            }
        }
        if let Some(n) = literal(f.get("network_mode")).filter(|n| *n != "awsvpc") {
            flag(
                Some("network_mode"),
                format!("Fargate tasks use network_mode \"awsvpc\", not \"{n}\""),
                "remove `network_mode` (it defaults to awsvpc)",
            );
        }
        let cpu = literal(f.get("cpu")).and_then(|c| task_units(c, "vcpu"));
        let mem = literal(f.get("memory")).and_then(|m| task_units(m, "gb"));
        if let (Some(c), Some(m)) = (cpu, mem) {
            let (c, m) = (c.parse::<i64>().unwrap_or(0), m.parse::<i64>().unwrap_or(0));
            match fargate_memory_ok(c, m) {
                None => flag(
                    Some("cpu"),
                    format!("Fargate has no task size with cpu {c}"),
                    "use 256, 512, 1024, 2048, 4096, 8192 or 16384",
                ),
                Some(false) => flag(
                    Some("memory"),
                    format!("Fargate does not pair cpu {c} with memory {m} MiB"),
                    "see the Fargate task sizes: cpu 256 takes 512-2048, 512 takes 1024-4096, \
                     1024 takes 2048-8192, 2048 takes 4096-16384 (steps of 1024)",
                ),
                Some(true) => {}
            }
        }
    }
    let containers = f
        .get("containers")
        .and_then(Value::as_list)
        .unwrap_or_default();
    if containers.is_empty() {
        flag(
            Some("containers"),
            "a task definition needs at least one container".into(),
            "add `containers = [{ name = \"app\", image = \"...\" }]`",
        );
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut essential = false;
    for c in containers.iter().filter_map(Value::as_map) {
        let name = str_of(c, "name").unwrap_or("");
        *names.entry(name).or_default() += 1;
        essential |= c.get("essential") != Some(&Value::Bool(false));
        if !task_memory && !c.contains_key("memory") && !c.contains_key("memory_reservation") {
            flag(
                Some("containers"),
                format!("container \"{name}\" has no memory limit and the task has none"),
                "set the task's `memory`, or the container's `memory` or `memory_reservation`",
            );
        }
        if let Some(h) = c.get("health_check").and_then(Value::as_map) {
            let cmd = h.get("command").map(Value::str_list).unwrap_or_default();
            if !matches!(
                cmd.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            ) {
                flag(
                    Some("containers"),
                    format!("container \"{name}\": a health check command starts with CMD, CMD-SHELL or NONE"),
                    "write it like [\"CMD-SHELL\", \"curl -f http://localhost:8080/ || exit 1\"]",
                );
            }
        }
        let secrets = c
            .get("secrets")
            .and_then(Value::as_map)
            .into_iter()
            .flatten();
        for (k, _) in secrets.filter(|(_, v)| v.as_str() == Some("")) {
            flag(
                Some("containers"),
                format!("container \"{name}\": secret `{k}` has an empty source"),
                "give a Secrets Manager ARN (\"${secret.NAME.arn}:KEY::\") or an SSM parameter ARN",
            );
        }
    }
    for (n, _) in names.into_iter().filter(|(_, count)| *count > 1) {
        flag(
            Some("containers"),
            format!("two containers are named \"{n}\""),
            "give each container its own name",
        );
    }
    if !containers.is_empty() && !essential {
        flag(
            Some("containers"),
            "no container is essential, so nothing would stop the task".into(),
            "leave `essential` at its default (true) on the main container",
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Registering.

fn unknown(address: &str, what: &str) -> ProviderError {
    ProviderError::InvalidInput(format!("{address}: {what} is not known yet"))
}

fn strs(m: &IndexMap<String, Value>, k: &str) -> Option<Vec<String>> {
    m.get(k).map(Value::str_list).filter(|l| !l.is_empty())
}

fn build_error(address: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::InvalidInput(format!("{address}: {e}"))
}

/// One declared container table as ECS's ContainerDefinition.
fn container_definition(
    address: &str,
    m: &IndexMap<String, Value>,
) -> Result<ContainerDefinition, ProviderError> {
    let name = str_of(m, "name").unwrap_or_default();
    if Value::Map(m.clone()).is_unknown() {
        return Err(unknown(
            address,
            &format!("a value of container \"{name}\""),
        ));
    }
    let mut c = ContainerDefinition::builder()
        .name(name)
        .set_image(str_of(m, "image").map(str::to_string))
        .essential(m.get("essential").and_then(Value::as_bool).unwrap_or(true))
        .set_command(strs(m, "command"))
        .set_entry_point(strs(m, "entry_point"))
        .set_cpu(i32_of(m, "cpu"))
        .set_memory(i32_of(m, "memory"))
        .set_memory_reservation(i32_of(m, "memory_reservation"));
    for p in m
        .get("port_mappings")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
    {
        c = c.port_mappings(
            PortMapping::builder()
                .set_container_port(i32_of(p, "container_port"))
                .protocol(TransportProtocol::from(
                    str_of(p, "protocol").unwrap_or("tcp"),
                ))
                .build(),
        );
    }
    for (k, v) in str_map(m.get("environment")) {
        c = c.environment(KeyValuePair::builder().name(k).value(v).build());
    }
    for (k, v) in str_map(m.get("secrets")) {
        c = c.secrets(
            Secret::builder()
                .name(k)
                .value_from(v)
                .build()
                .map_err(|e| build_error(address, e))?,
        );
    }
    if let Some(h) = m.get("health_check").and_then(Value::as_map) {
        c = c.health_check(
            HealthCheck::builder()
                .set_command(h.get("command").map(Value::str_list))
                .set_interval(i32_of(h, "interval"))
                .set_timeout(i32_of(h, "timeout"))
                .set_retries(i32_of(h, "retries"))
                .set_start_period(i32_of(h, "start_period"))
                .build()
                .map_err(|e| build_error(address, e))?,
        );
    }
    if let Some(l) = m.get("log_configuration").and_then(Value::as_map) {
        let opts: HashMap<String, String> = str_map(l.get("options")).into_iter().collect();
        c = c.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::from(
                    str_of(l, "log_driver").unwrap_or("awslogs"),
                ))
                .set_options((!opts.is_empty()).then_some(opts))
                .build()
                .map_err(|e| build_error(address, e))?,
        );
    }
    Ok(c.build())
}

#[async_trait]
impl Provider for EcsTaskDefinition {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        ecs::diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        describe_many(cx, ids).await
    }

    /// Lists the region's ACTIVE revisions and describes the newest of each
    /// family (an interrupted registration is its family's newest): one
    /// DescribeTaskDefinition per family.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let mut newest: BTreeMap<String, (i64, String)> = BTreeMap::new();
        let mut pages = cx
            .ecs
            .list_task_definitions()
            .status(TaskDefinitionStatus::Active)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for arn in page.map_err(ecs_error)?.task_definition_arns() {
                let Some((family, rev)) =
                    arn.rsplit_once('/').and_then(|(_, fr)| fr.rsplit_once(':'))
                else {
                    continue;
                };
                let rev: i64 = rev.parse().unwrap_or(0);
                let e = newest
                    .entry(family.to_string())
                    .or_insert((rev, arn.clone()));
                if rev > e.0 {
                    *e = (rev, arn.clone());
                }
            }
        }
        let arns: Vec<String> = newest.into_values().map(|(_, a)| a).collect();
        let found = describe_many(cx, &arns).await?;
        let mut out = ecs::tagged(cx, addresses, found.into_values());
        out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        Ok(out)
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        if let Some((_, msg, help)) = problems(f).into_iter().next() {
            return Err(ProviderError::InvalidInput(format!(
                "{addr}: {msg}; {help}"
            )));
        }
        let canon = normal_form(&SCHEMA, f);
        let s = |k: &str| str_of(&canon, k).map(str::to_string);
        let mut containers = Vec::new();
        for c in f
            .get("containers")
            .and_then(Value::as_list)
            .unwrap_or_default()
        {
            match c {
                Value::Map(m) => containers.push(container_definition(addr, m)?),
                _ => return Err(unknown(addr, "`containers`")),
            }
        }
        let runtime = f.get("runtime_platform").and_then(Value::as_map).map(|r| {
            RuntimePlatform::builder()
                .set_operating_system_family(
                    str_of(r, "operating_system_family").map(OsFamily::from),
                )
                .set_cpu_architecture(str_of(r, "cpu_architecture").map(CpuArchitecture::from))
                .build()
        });
        let compat: Vec<Compatibility> = canon
            .get("requires_compatibilities")
            .map(Value::str_list)
            .unwrap_or_default()
            .iter()
            .map(|c| Compatibility::from(c.as_str()))
            .collect();
        let out = cx
            .ecs
            .register_task_definition()
            .set_family(s("family"))
            .set_cpu(s("cpu"))
            .set_memory(s("memory"))
            .set_network_mode(s("network_mode").map(|n| NetworkMode::from(n.as_str())))
            .set_requires_compatibilities(Some(compat))
            .set_execution_role_arn(s("execution_role_arn"))
            .set_task_role_arn(s("task_role_arn"))
            .set_runtime_platform(runtime)
            .set_container_definitions(Some(containers))
            .set_tags(Some(ecs::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(addr, "registering", ecs_error(e)))?;
        let arn = out
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .ok_or_else(|| {
                ProviderError::Other(format!(
                    "{addr}: RegisterTaskDefinition returned no task definition"
                ))
            })?
            .to_string();
        describe_one(cx, &arn).await?.ok_or_else(|| {
            ProviderError::NotFound(format!(
                "{addr}: {arn} vanished right after it was registered; run plan again"
            ))
        })
    }

    /// Only tags change in place; everything else forces a new revision.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        if changes.iter().any(|c| c.field == "tags") {
            ecs::sync_tags(cx, &live.id, &live.tags, want.tags)
                .await
                .map_err(|e| named(want.address, "tagging", e))?;
        }
        Ok(Observed {
            tags: want.tags.clone(),
            ..live.clone()
        })
    }

    /// Deregisters the revision; it stays readable as INACTIVE, which running
    /// tasks and rollbacks may still need.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        match cx
            .ecs
            .deregister_task_definition()
            .task_definition(id)
            .send()
            .await
            .map_err(ecs_error)
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(named(
                &format!("ecs_task_definition {id}"),
                "deregistering",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn fields(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(fields(pairs))
    }

    #[test]
    fn sizes_read_in_ecs_units() {
        assert_eq!(task_units("1024", "vcpu").as_deref(), Some("1024"));
        assert_eq!(task_units("1 vCPU", "vcpu").as_deref(), Some("1024"));
        assert_eq!(task_units(".25 vcpu", "vcpu").as_deref(), Some("256"));
        assert_eq!(task_units("2 GB", "gb").as_deref(), Some("2048"));
        assert_eq!(task_units("2GB", "gb").as_deref(), Some("2048"));
        assert_eq!(task_units("lots", "gb"), None);
        assert_eq!(task_units("0", "gb"), None);
        assert!(check_cpu("1 vCPU").is_ok());
        assert!(check_memory("2 vCPU").is_err());
    }

    #[test]
    fn fargate_sizes() {
        assert_eq!(fargate_memory_ok(1024, 2048), Some(true));
        assert_eq!(fargate_memory_ok(1024, 1024), Some(false));
        assert_eq!(fargate_memory_ok(256, 512), Some(true));
        assert_eq!(fargate_memory_ok(300, 512), None);
    }

    fn keycloak() -> Fields {
        fields(&[
            ("family", Value::str("keycloak")),
            ("cpu", Value::str("1 vCPU")),
            ("memory", Value::str("2048")),
            ("network_mode", Value::str("awsvpc")),
            (
                "containers",
                Value::List(vec![map(&[
                    ("name", Value::str("keycloak")),
                    ("image", Value::str("quay.io/keycloak/keycloak:26.5")),
                    ("essential", Value::Bool(true)),
                    (
                        "port_mappings",
                        Value::List(vec![map(&[
                            ("container_port", Value::Int(8080)),
                            ("protocol", Value::str("tcp")),
                        ])]),
                    ),
                    (
                        "environment",
                        map(&[("B", Value::str("2")), ("A", Value::str("1"))]),
                    ),
                    (
                        "health_check",
                        map(&[(
                            "command",
                            Value::List(vec![Value::str("CMD-SHELL"), Value::str("true")]),
                        )]),
                    ),
                ])]),
            ),
        ])
    }

    #[test]
    fn what_ecs_echoes_back_compares_equal() {
        let cd = ContainerDefinition::builder()
            .name("keycloak")
            .image("quay.io/keycloak/keycloak:26.5")
            .cpu(0)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(8080)
                    .host_port(8080)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .environment(KeyValuePair::builder().name("A").value("1").build())
            .environment(KeyValuePair::builder().name("B").value("2").build())
            .health_check(
                HealthCheck::builder()
                    .command("CMD-SHELL")
                    .command("true")
                    .interval(30)
                    .timeout(5)
                    .retries(3)
                    .build()
                    .unwrap(),
            )
            .build();
        let td = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/keycloak:3")
            .family("keycloak")
            .revision(3)
            .cpu("1024")
            .memory("2048")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .status(TaskDefinitionStatus::Active)
            .container_definitions(cd)
            .build();
        let o = observed(&td, &[]).unwrap();
        assert_eq!(o.attributes["revision"], Value::Int(3));
        let d = EcsTaskDefinition.diff(&keycloak(), &o.fields);
        assert!(d.is_empty(), "{d:?}");

        let mut want = keycloak();
        if let Some(Value::List(cs)) = want.get_mut("containers") {
            if let Value::Map(c) = &mut cs[0] {
                c.insert("image".into(), Value::str("quay.io/keycloak/keycloak:26.6"));
            }
        }
        let d = EcsTaskDefinition.diff(&want, &o.fields);
        assert_eq!(d.len(), 1);
        assert!(d[0].forces_replace && d[0].field == "containers");

        let mut live = o.fields.clone();
        live.insert("task_role_arn".into(), Value::str("arn:aws:iam::1:role/x"));
        let d = EcsTaskDefinition.diff(&keycloak(), &live);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].forces_replace && d[0].field == "task_role_arn");

        let inactive = td.to_owned();
        let inactive = TaskDefinition::builder()
            .set_task_definition_arn(inactive.task_definition_arn().map(str::to_string))
            .status(TaskDefinitionStatus::Inactive)
            .build();
        assert!(observed(&inactive, &[]).is_none());
    }

    #[test]
    fn problems_are_found_before_any_call() {
        assert!(
            problems(&keycloak()).is_empty(),
            "{:?}",
            problems(&keycloak())
        );
        let mut f = keycloak();
        f.shift_remove("cpu");
        assert!(problems(&f)[0].1.contains("task-level `cpu`"));
        let mut f = keycloak();
        f.insert("memory".into(), Value::str("1024"));
        assert!(problems(&f)[0].1.contains("does not pair"));
        let mut f = keycloak();
        f.insert("network_mode".into(), Value::str("bridge"));
        assert!(problems(&f)[0].1.contains("awsvpc"));
        let mut f = keycloak();
        f.insert("containers".into(), Value::List(vec![]));
        assert!(problems(&f)[0].1.contains("at least one container"));
    }
}
