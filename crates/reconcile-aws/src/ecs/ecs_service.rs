//! `ecs_service`: an ECS service running a task definition on Fargate in awsvpc
//! mode, optionally behind load balancer target groups.
//!
//! A create looks the name up in its cluster first (ECS, and moto even more so,
//! would otherwise make or overwrite a duplicate), then reads the service back
//! and sets with one UpdateService whatever CreateService dropped (moto drops
//! the deployment configuration, ECS Exec and the grace period), so the next
//! plan is clean. With `wait_for_steady_state`, creates and updates wait until
//! the deployment has settled. A delete scales to zero, deletes, and waits
//! until ECS reports the service INACTIVE.

use crate::ecs::{self, ecs_error, fields_of, int_value, named, service_arn_parts, some_fields_of};
use crate::kit::adopt::changes_to;
use crate::kit::fields::{bool_of, changes_field, i32_of, str_list, str_of, strs_of};
use crate::kit::wait::{Progress, Timeouts, Wait};
use crate::kit::{Cx, Desired, Provider, ProviderError, StatusSink};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentRolloutState, LaunchType, LoadBalancer, NetworkConfiguration, PropagateTags, Service,
};
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_ADDRESS};
use std::collections::HashMap;
use std::time::Duration;

pub struct EcsService;

fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a service name: start with a letter, then up to 255 letters, digits, hyphens and underscores"
        ))
    }
}

const LB_FIELDS: &[Field] = &[
    Field::new(
        "target_group_arn",
        Ty::Str,
        "The target group, like \"${target_group.keycloak.arn}\" (target_type \"ip\" for awsvpc).",
    )
    .required(),
    Field::new(
        "container_name",
        Ty::Str,
        "The container that receives the traffic.",
    )
    .required(),
    Field::new("container_port", Ty::Int, "The container's port.")
        .required()
        .range(1, 65535),
];

const CIRCUIT_BREAKER_FIELDS: &[Field] = &[
    Field::new(
        "enable",
        Ty::Bool,
        "Stop a deployment whose tasks keep failing to start.",
    )
    .default(Default::Bool(true)),
    Field::new(
        "rollback",
        Ty::Bool,
        "Roll back to the last completed deployment when it stops one.",
    )
    .default(Default::Bool(false)),
];

pub static SCHEMA: Schema = Schema {
    kind: "ecs_service",
    doc: "An ECS service keeping `desired_count` tasks of a task definition running, on \
          Fargate in awsvpc mode by default. Most fields change in place (a new deployment); \
          a new task definition revision is rolled out in place. While an \
          `appautoscaling_target` of the stack scales the service, its `desired_count` is the \
          autoscaler's: set at creation, then not compared (the plan says so). Observed with \
          DescribeServices, 10 services of one cluster per call, tags included.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The service name, unique in its cluster. Changing it replaces the service.",
        )
        .required()
        .force_new(),
        Field::new(
            "cluster",
            Ty::Str,
            "The cluster, by ARN or name, like \"${ecs_cluster.main.arn}\". Changing it replaces \
             the service.",
        )
        .required()
        .norm(Norm::NameOrArn)
        .force_new(),
        Field::new(
            "task_definition",
            Ty::Str,
            "The task definition revision to run, like \"${ecs_task_definition.app.arn}\" (or \
             \"family:revision\"; a bare family matches any of its revisions). Changed in place: \
             ECS rolls the tasks over to it.",
        )
        .required()
        .norm(Norm::NameOrArn),
        Field::new(
            "desired_count",
            Ty::Int,
            "How many tasks to keep running. Changed in place. Scaled by an \
             `appautoscaling_target` of the stack, it is only set at creation; scaled by \
             something else, add `ignore_changes = [\"desired_count\"]`.",
        )
        .default(Default::Int(1)),
        Field::new(
            "launch_type",
            Ty::Enum(&["FARGATE", "EC2", "EXTERNAL"]),
            "Where the tasks run. Changing it replaces the service.",
        )
        .default(Default::Str("FARGATE"))
        .force_new(),
        Field::new(
            "platform_version",
            Ty::Str,
            "The Fargate platform version, like \"LATEST\" or \"1.4.0\". Changed in place.",
        ),
        Field::new(
            "subnets",
            Ty::List(&Ty::Str),
            "The subnets the tasks' network interfaces go in (awsvpc), compared as a set. \
             Changed in place.",
        )
        .set(),
        Field::new(
            "security_groups",
            Ty::List(&Ty::Str),
            "The tasks' security groups (awsvpc), compared as a set. Changed in place.",
        )
        .set(),
        Field::new(
            "assign_public_ip",
            Ty::Bool,
            "Give each task a public IP (only in public subnets without a NAT gateway). Changed \
             in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "load_balancers",
            Ty::List(&Ty::Object(LB_FIELDS)),
            "Target groups that receive the tasks: [{ target_group_arn, container_name, \
             container_port }], compared as a set. Changed in place.",
        )
        .set(),
        Field::new(
            "deployment_circuit_breaker",
            Ty::Object(CIRCUIT_BREAKER_FIELDS),
            "{ enable = true, rollback = true }: stop (and roll back) a deployment whose tasks \
             keep failing. Changed in place.",
        ),
        Field::new(
            "deployment_minimum_healthy_percent",
            Ty::Int,
            "Lower limit of running tasks during a deployment, in percent of desired_count \
             (ECS's default 100). Changed in place.",
        )
        .range(0, 100),
        Field::new(
            "deployment_maximum_percent",
            Ty::Int,
            "Upper limit of tasks during a deployment, in percent of desired_count (ECS's \
             default 200). Changed in place.",
        ),
        Field::new(
            "health_check_grace_period_seconds",
            Ty::Int,
            "Seconds the load balancer's failing health checks are ignored after a task starts. \
             Changed in place.",
        )
        .range(0, 2_147_483_647),
        Field::new(
            "enable_execute_command",
            Ty::Bool,
            "Allow ECS Exec (`aws ecs execute-command`) into the tasks. Changed in place (new \
             tasks only).",
        )
        .default(Default::Bool(false)),
        Field::new(
            "propagate_tags",
            Ty::Enum(&["NONE", "SERVICE", "TASK_DEFINITION"]),
            "Copy the service's or the task definition's tags to its tasks. Changed in place.",
        )
        .default(Default::Str("NONE")),
        Field::new(
            "wait_for_steady_state",
            Ty::Bool,
            "Reconcile setting: after a create or update, wait until the deployment has \
             completed and runningCount equals desiredCount (bounded by `timeouts`).",
        )
        .default(Default::Bool(false))
        .local(),
        ecs::TIMEOUTS,
    ],
    attributes: &[
        ("id", "The service ARN."),
        ("arn", "The service ARN."),
        ("name", "The service name."),
        ("cluster", "The cluster's ARN."),
    ],
    taggable: true,
};

// ---------------------------------------------------------------------------
// Observing.

fn observed(s: &Service) -> Option<Observed> {
    let arn = s.service_arn()?.to_string();
    let name = s.service_name().unwrap_or_default();
    let cluster = s.cluster_arn().unwrap_or_default();
    let vpc = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let public = vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled);
    let lbs = s.load_balancers().iter().map(|lb| {
        Value::Map(fields_of([
            (
                "target_group_arn",
                Value::str(lb.target_group_arn().unwrap_or_default()),
            ),
            (
                "container_name",
                Value::str(lb.container_name().unwrap_or_default()),
            ),
            (
                "container_port",
                Value::Int(lb.container_port().unwrap_or(0).into()),
            ),
        ]))
    });
    let dc = s.deployment_configuration();
    let cb = dc.and_then(|d| d.deployment_circuit_breaker());
    let cb = fields_of([
        ("enable", Value::Bool(cb.is_some_and(|c| c.enable()))),
        ("rollback", Value::Bool(cb.is_some_and(|c| c.rollback()))),
    ]);
    let text = |s: Option<&str>, or: &str| Some(Value::str(s.unwrap_or(or)));
    let grace = s.health_check_grace_period_seconds().unwrap_or(0);
    let f = some_fields_of([
        ("name", Some(Value::str(name))),
        ("cluster", Some(Value::str(cluster))),
        ("task_definition", text(s.task_definition(), "")),
        ("desired_count", int_value(Some(s.desired_count()))),
        ("launch_type", text(s.launch_type().map(|l| l.as_str()), "")),
        ("platform_version", s.platform_version().map(Value::str)),
        (
            "subnets",
            Some(str_list(vpc.map(|v| v.subnets()).unwrap_or_default())),
        ),
        (
            "security_groups",
            Some(str_list(
                vpc.map(|v| v.security_groups()).unwrap_or_default(),
            )),
        ),
        ("assign_public_ip", Some(Value::Bool(public))),
        ("load_balancers", Some(Value::List(lbs.collect()))),
        ("deployment_circuit_breaker", Some(Value::Map(cb))),
        (
            "deployment_minimum_healthy_percent",
            int_value(dc.and_then(|d| d.minimum_healthy_percent())),
        ),
        (
            "deployment_maximum_percent",
            int_value(dc.and_then(|d| d.maximum_percent())),
        ),
        ("health_check_grace_period_seconds", int_value(Some(grace))),
        (
            "enable_execute_command",
            Some(Value::Bool(s.enable_execute_command())),
        ),
        (
            "propagate_tags",
            text(s.propagate_tags().map(|p| p.as_str()), "NONE"),
        ),
    ]);
    Some(Observed {
        fields: f,
        attributes: fields_of([
            ("id", Value::str(&arn)),
            ("arn", Value::str(&arn)),
            ("name", Value::str(name)),
            ("cluster", Value::str(cluster)),
            ("status", Value::str(s.status().unwrap_or_default())),
        ]),
        id: arn,
        tags: ecs::tags_of(s.tags()),
    })
}

/// Where a service's ARN says it lives, or what to do about an id that is no ARN.
fn parts(id: &str) -> Result<(String, String), ProviderError> {
    service_arn_parts(id).ok_or_else(|| {
        ProviderError::InvalidInput(format!(
            "\"{id}\" is not an ECS service ARN (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME); \
             import services by ARN"
        ))
    })
}

async fn observe_one(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(ecs::describe_services_by_arn(cx, &[id.to_string()])
        .await?
        .iter()
        .find_map(observed))
}

// ---------------------------------------------------------------------------
// Desired values in AWS's shapes.

fn load_balancers(f: &Fields) -> Vec<LoadBalancer> {
    f.get("load_balancers")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .map(|m| {
            LoadBalancer::builder()
                .set_target_group_arn(str_of(m, "target_group_arn").map(str::to_string))
                .set_container_name(str_of(m, "container_name").map(str::to_string))
                .set_container_port(i32_of(m, "container_port"))
                .build()
        })
        .collect()
}

/// The awsvpc configuration: declared values, live ones for what is not declared.
fn network(
    address: &str,
    f: &Fields,
    live: Option<&Fields>,
) -> Result<Option<NetworkConfiguration>, ProviderError> {
    let pick = |k: &str| strs_of(f, k).or_else(|| live.and_then(|l| strs_of(l, k)));
    let subnets = pick("subnets").unwrap_or_default();
    if subnets.is_empty() {
        return Ok(None);
    }
    let public = bool_of(f, "assign_public_ip").unwrap_or(false);
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(subnets))
        // Sent even when empty: ECS then uses the VPC's default group (and moto
        // needs the key).
        .set_security_groups(Some(pick("security_groups").unwrap_or_default()))
        .assign_public_ip(if public {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| ProviderError::InvalidInput(format!("{address}: {e}")))?;
    Ok(Some(
        NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build(),
    ))
}

/// The deployment configuration: declared values, live ones for what is not
/// declared (UpdateService replaces the whole structure).
fn deployment(f: &Fields, live: Option<&Fields>) -> Option<DeploymentConfiguration> {
    let get = |k: &str| f.get(k).or_else(|| live.and_then(|l| l.get(k)));
    let cb = get("deployment_circuit_breaker")
        .and_then(Value::as_map)
        .map(|m| {
            DeploymentCircuitBreaker::builder()
                .enable(bool_of(m, "enable").unwrap_or(true))
                .rollback(bool_of(m, "rollback").unwrap_or(false))
                .build()
        });
    let int = |k: &str| {
        get(k)
            .and_then(Value::as_int)
            .and_then(|i| i32::try_from(i).ok())
    };
    let min = int("deployment_minimum_healthy_percent");
    let max = int("deployment_maximum_percent");
    (cb.is_some() || min.is_some() || max.is_some()).then(|| {
        DeploymentConfiguration::builder()
            .set_deployment_circuit_breaker(cb)
            .set_minimum_healthy_percent(min)
            .set_maximum_percent(max)
            .build()
    })
}

/// Problems in one declaration, by field (`None`: the whole resource).
pub fn problems(f: &Fields) -> Vec<(Option<&'static str>, String, String)> {
    let mut out = Vec::new();
    let mut flag = |field, msg: String, help: &str| out.push((field, msg, help.to_string()));
    // A reference to a whole list (`subnets = "${...}"`) is checked once resolved.
    let no_subnets = match f.get("subnets") {
        None => true,
        Some(Value::List(l)) => l.is_empty(),
        Some(_) => false,
    };
    if str_of(f, "launch_type").unwrap_or("FARGATE") == "FARGATE" && no_subnets {
        flag(
            None,
            "a Fargate service runs in awsvpc mode and needs `subnets`".into(),
            "add `subnets = [\"${subnet.private_a.id}\", \"${subnet.private_b.id}\"]` (and \
             `security_groups`)",
        );
    }
    if let Some(n) = f
        .get("desired_count")
        .and_then(Value::as_int)
        .filter(|n| *n < 0)
    {
        flag(
            Some("desired_count"),
            format!("desired_count {n} is negative"),
            "use 0 or more",
        );
    }
    let max = f.get("deployment_maximum_percent").and_then(Value::as_int);
    if let Some(p) = max.filter(|p| *p < 100) {
        flag(
            Some("deployment_maximum_percent"),
            format!("deployment_maximum_percent {p} is below 100"),
            "use 100 or more (200 lets a deployment start a full new set of tasks first)",
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Waiting.

/// One look at a deployment: settled when ECS's own "services stable" test
/// holds (one deployment, runningCount == desiredCount); failed when the
/// circuit breaker stopped it.
pub async fn steady_progress(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Progress, ProviderError> {
    let Some(s) = look(client, cluster, service).await? else {
        return Err(ProviderError::NotFound(format!(
            "the service {service} disappeared while reconcile waited for it (deleted outside \
             reconcile?); run plan again"
        )));
    };
    let primary = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let rollout = primary
        .and_then(|d| d.rollout_state())
        .map(|r| r.as_str().to_ascii_lowercase().replace('_', " "))
        .unwrap_or_else(|| "in progress".into());
    let (running, desired) = (s.running_count(), s.desired_count());
    let status = format!("{running}/{desired} tasks running, deployment {rollout}");
    if primary.and_then(|d| d.rollout_state()) == Some(&DeploymentRolloutState::Failed) {
        let why = primary
            .and_then(|d| d.rollout_state_reason())
            .unwrap_or("its tasks kept failing");
        return Ok(Progress::Failed(format!("the deployment failed: {why}")));
    }
    if s.deployments().len() <= 1 && running == desired {
        return Ok(Progress::Done(format!(
            "{running}/{desired} tasks running, steady"
        )));
    }
    Ok(Progress::Pending(status))
}

/// One look at a service being deleted: done once INACTIVE or gone.
pub async fn delete_progress(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Progress, ProviderError> {
    match look(client, cluster, service).await {
        Ok(Some(s)) => Ok(Progress::Pending(format!(
            "{} ({} tasks running)",
            s.status().unwrap_or("draining").to_ascii_lowercase(),
            s.running_count()
        ))),
        Ok(None) => Ok(Progress::Done("deleted".into())),
        Err(e) if e.is_not_found() => Ok(Progress::Done("deleted".into())),
        Err(e) => Err(e),
    }
}

/// The service as ECS describes it now; `None` once INACTIVE.
async fn look(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<Service>, ProviderError> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(ecs_error)?;
    let mut live = out
        .services()
        .iter()
        .filter(|s| s.status() != Some("INACTIVE"));
    Ok(live.next().cloned())
}

fn waiting<'a>(
    address: &'a str,
    phase: &'static str,
    timeout: Duration,
    status: &'a StatusSink,
) -> Wait<'a> {
    Wait {
        address,
        phase,
        timeout,
        backoff: ecs::BACKOFF,
        status,
        when_failed: ecs::WHEN_FAILED,
        when_timed_out: ecs::WHEN_TIMED_OUT,
    }
}

// ---------------------------------------------------------------------------
// The provider.

impl EcsService {
    /// Applies in-place changes with one UpdateService (plus tag calls), and
    /// reads the service back. No wait.
    async fn apply_changes(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(Observed, bool), ProviderError> {
        let f = want.fields;
        let addr = want.address;
        let ch = |k: &str| changes_field(changes, k);
        let (cluster, _) = parts(&live.id)?;
        let mut req = cx.ecs.update_service().cluster(&cluster).service(&live.id);
        let mut any = false;
        let mut set = |on: bool| {
            any |= on;
            on
        };
        if set(ch("task_definition")) {
            req = req.set_task_definition(str_of(f, "task_definition").map(str::to_string));
        }
        if set(ch("desired_count")) {
            req = req.set_desired_count(i32_of(f, "desired_count"));
        }
        if set(ch("platform_version")) {
            req = req.set_platform_version(str_of(f, "platform_version").map(str::to_string));
        }
        if set(ch("subnets") || ch("security_groups") || ch("assign_public_ip")) {
            req = req.set_network_configuration(network(addr, f, Some(&live.fields))?);
        }
        if set(ch("load_balancers")) {
            req = req.set_load_balancers(Some(load_balancers(f)));
        }
        if set(ch("deployment_circuit_breaker")
            || ch("deployment_minimum_healthy_percent")
            || ch("deployment_maximum_percent"))
        {
            req = req.set_deployment_configuration(deployment(f, Some(&live.fields)));
        }
        if set(ch("health_check_grace_period_seconds")) {
            req = req.set_health_check_grace_period_seconds(i32_of(
                f,
                "health_check_grace_period_seconds",
            ));
        }
        if set(ch("enable_execute_command")) {
            req = req.set_enable_execute_command(bool_of(f, "enable_execute_command"));
        }
        if set(ch("propagate_tags")) {
            req = req.set_propagate_tags(str_of(f, "propagate_tags").map(PropagateTags::from));
        }
        if any {
            req.send()
                .await
                .map_err(|e| named(addr, "updating", ecs_error(e)))?;
        }
        if ch("tags") {
            ecs::sync_tags(cx, &live.id, &live.tags, want.tags)
                .await
                .map_err(|e| named(addr, "tagging", e))?;
        }
        if !any {
            return Ok((
                Observed {
                    tags: want.tags.clone(),
                    ..live.clone()
                },
                false,
            ));
        }
        let mut o = observe_one(cx, &live.id).await?.ok_or_else(|| {
            ProviderError::NotFound(format!("{addr}: {} vanished during its update", live.id))
        })?;
        o.tags = want.tags.clone();
        Ok((o, true))
    }

    async fn wait_steady(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        id: &str,
        phase: &'static str,
    ) -> Result<(), ProviderError> {
        if bool_of(want.fields, "wait_for_steady_state") != Some(true) {
            return Ok(());
        }
        let t = Timeouts::of(want.address, Some(want.fields), ecs::DEFAULTS)?;
        let timeout = if phase == "create" {
            t.create
        } else {
            t.update
        };
        let (cluster, _) = parts(id)?;
        ecs::wait(&waiting(want.address, phase, timeout, &cx.status), || {
            steady_progress(&cx.ecs, &cluster, id)
        })
        .await
    }
}

#[async_trait]
impl Provider for EcsService {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        ecs::diagnostics(r, problems(&r.fields))
    }

    /// A service name is unique in its cluster: only a renamed or moved service
    /// can exist beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "name") || changes_field(changes, "cluster")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        Ok(ecs::describe_services_by_arn(cx, ids)
            .await?
            .iter()
            .filter_map(observed)
            .map(|o| (o.id.clone(), o))
            .collect())
    }

    /// Lists every cluster and its services, and describes them 10 at a time:
    /// 1 + (1 + services/10) calls per cluster.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let mut out = Vec::new();
        for cluster in ecs::list_clusters(cx).await? {
            let mut arns = Vec::new();
            let mut pages = cx
                .ecs
                .list_services()
                .cluster(&cluster)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                match page.map_err(ecs_error) {
                    Ok(p) => arns.extend(p.service_arns().iter().cloned()),
                    Err(e) if e.is_not_found() => break,
                    Err(e) => return Err(e),
                }
            }
            let found = ecs::describe_services(cx, &cluster, &arns).await?;
            out.extend(ecs::tagged(
                cx,
                addresses,
                found.iter().filter_map(observed),
            ));
        }
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
        let name = str_of(f, "name").unwrap_or_default().to_string();
        let cluster = str_of(f, "cluster").unwrap_or_default().to_string();
        Timeouts::of(addr, Some(f), ecs::DEFAULTS)?;

        // Look before leaping: ECS keeps one ACTIVE service per name and cluster,
        // but moto would silently make a second one.
        let existing = ecs::describe_services(cx, &cluster, std::slice::from_ref(&name))
            .await
            .map_err(|e| named(addr, "looking up the name", e))?;
        let live = if let Some(s) = existing.iter().find_map(observed) {
            let what = format!("an ECS service in cluster {}", ecs::name_of(&cluster));
            let s = ecs::claim(cx, want, &what, &name, s)?;
            if s.attributes.get("status") == Some(&Value::str("DRAINING")) {
                return Err(ProviderError::Other(format!(
                    "{addr}: the service {name} is still draining after a delete; wait until \
                     ECS reports it INACTIVE and apply again"
                )));
            }
            s
        } else {
            let launch = str_of(f, "launch_type").unwrap_or("FARGATE");
            let out = cx
                .ecs
                .create_service()
                .cluster(&cluster)
                .service_name(&name)
                .set_task_definition(str_of(f, "task_definition").map(str::to_string))
                .set_desired_count(i32_of(f, "desired_count"))
                .launch_type(LaunchType::from(launch))
                .set_platform_version(str_of(f, "platform_version").map(str::to_string))
                .set_network_configuration(network(addr, f, None)?)
                .set_load_balancers(Some(load_balancers(f)).filter(|l| !l.is_empty()))
                .set_deployment_configuration(deployment(f, None))
                .set_health_check_grace_period_seconds(i32_of(
                    f,
                    "health_check_grace_period_seconds",
                ))
                .set_enable_execute_command(bool_of(f, "enable_execute_command"))
                .set_propagate_tags(str_of(f, "propagate_tags").map(PropagateTags::from))
                .set_tags(Some(ecs::to_tags(want.tags)))
                .client_token(want.token.chars().take(36).collect::<String>())
                .send()
                .await
                .map_err(|e| named(addr, "creating", ecs_error(e)))?;
            let arn = out
                .service()
                .and_then(|s| s.service_arn())
                .ok_or_else(|| {
                    ProviderError::Other(format!("{addr}: CreateService returned no service"))
                })?
                .to_string();
            observe_one(cx, &arn).await?.ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "{addr}: {arn} vanished right after it was created; run plan again"
                ))
            })?
        };

        // Convergence: whatever the create dropped (or an adopted copy lacks)
        // is set now with one UpdateService.
        let changes: Vec<FieldChange> = changes_to(self, want, &live)
            .into_iter()
            .filter(|c| !c.forces_replace && !SCHEMA.field(&c.field).is_some_and(|f| f.local))
            .collect();
        let live = if changes.is_empty() {
            live
        } else {
            self.apply_changes(cx, &live, want, &changes).await?.0
        };
        self.wait_steady(cx, want, &live.id, "create").await?;
        Ok(live)
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        Timeouts::of(want.address, Some(want.fields), ecs::DEFAULTS)?;
        let (o, sent) = self.apply_changes(cx, live, want, changes).await?;
        if sent {
            self.wait_steady(cx, want, &o.id, "update").await?;
        }
        Ok(o)
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Scales to zero, deletes (forced, so tasks still draining do not block
    /// it), and waits until ECS reports the service INACTIVE, so that its
    /// cluster can go next.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let (cluster, _) = parts(id)?;
        let Some(live) = observe_one(cx, id).await? else {
            return Ok(());
        };
        let addr = live
            .tags
            .get(TAG_ADDRESS)
            .cloned()
            .unwrap_or_else(|| format!("ecs_service {id}"));
        let t = Timeouts::of(&addr, applied, ecs::DEFAULTS)?;
        if live.attributes.get("status") == Some(&Value::str("ACTIVE"))
            && live.fields.get("desired_count") != Some(&Value::Int(0))
        {
            match cx
                .ecs
                .update_service()
                .cluster(&cluster)
                .service(id)
                .desired_count(0)
                .send()
                .await
                .map_err(ecs_error)
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(named(&addr, "scaling to 0 before deleting", e)),
            }
        }
        match cx
            .ecs
            .delete_service()
            .cluster(&cluster)
            .service(id)
            .force(true)
            .send()
            .await
            .map_err(ecs_error)
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(named(&addr, "deleting", e)),
        }
        ecs::wait(&waiting(&addr, "delete", t.delete, &cx.status), || {
            delete_progress(&cx.ecs, &cluster, id)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::wait::Backoff;
    use crate::kit::SchemaDiff;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::types::Deployment;
    use aws_sdk_ecs::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::{Arc, Mutex};

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/main/api";

    fn service(
        running: i32,
        desired: i32,
        deployments: &[(&str, DeploymentRolloutState)],
    ) -> DescribeServicesOutput {
        let mut s = Service::builder()
            .service_arn(ARN)
            .service_name("api")
            .status("ACTIVE")
            .running_count(running)
            .desired_count(desired);
        for (status, rollout) in deployments {
            s = s.deployments(
                Deployment::builder()
                    .status(*status)
                    .rollout_state(rollout.clone())
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .build(),
            );
        }
        DescribeServicesOutput::builder()
            .services(s.build())
            .build()
    }

    fn sink() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        (
            StatusSink::new(move |a, s| s2.lock().unwrap().push(format!("{a}: {s}"))),
            seen,
        )
    }

    fn fast<'a>(sink: &'a StatusSink, phase: &'static str, timeout: Duration) -> Wait<'a> {
        Wait {
            address: "ecs_service.api",
            phase,
            timeout,
            backoff: Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(4),
            },
            status: sink,
            when_failed: ecs::WHEN_FAILED,
            when_timed_out: ecs::WHEN_TIMED_OUT,
        }
    }

    use DeploymentRolloutState::{Completed, Failed, InProgress};

    #[tokio::test]
    async fn waits_for_a_deployment_to_settle_reporting_each_status_once() {
        let rule = mock!(Client::describe_services)
            .sequence()
            .output(|| service(0, 2, &[("PRIMARY", InProgress), ("ACTIVE", Completed)]))
            .output(|| service(0, 2, &[("PRIMARY", InProgress), ("ACTIVE", Completed)]))
            .output(|| service(1, 2, &[("PRIMARY", InProgress), ("ACTIVE", Completed)]))
            .output(|| service(2, 2, &[("PRIMARY", InProgress), ("ACTIVE", Completed)]))
            .output(|| service(2, 2, &[("PRIMARY", Completed)]))
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);
        let (sink, seen) = sink();
        ecs::wait(&fast(&sink, "update", Duration::from_secs(10)), || {
            steady_progress(&client, "main", ARN)
        })
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "ecs_service.api: 0/2 tasks running, deployment in progress",
                "ecs_service.api: 1/2 tasks running, deployment in progress",
                "ecs_service.api: 2/2 tasks running, deployment in progress",
                "ecs_service.api: 2/2 tasks running, steady",
            ]
        );
    }

    #[tokio::test]
    async fn a_deployment_the_circuit_breaker_stopped_fails_at_once() {
        let rule = mock!(Client::describe_services)
            .sequence()
            .output(|| service(0, 1, &[("PRIMARY", InProgress), ("ACTIVE", Completed)]))
            .output(|| service(1, 1, &[("PRIMARY", Failed), ("ACTIVE", Completed)]))
            .output(|| service(1, 1, &[("PRIMARY", Completed)]))
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);
        let (sink, seen) = sink();
        let e = ecs::wait(&fast(&sink, "create", Duration::from_secs(10)), || {
            steady_progress(&client, "main", ARN)
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ecs_service.api") && e.contains("circuit breaker"),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_deployment_that_never_settles_times_out_naming_the_setting() {
        let rule = mock!(Client::describe_services)
            .sequence()
            .output(|| service(0, 1, &[("PRIMARY", InProgress)]))
            .times(100_000)
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);
        let (sink, _) = sink();
        let started = std::time::Instant::now();
        let e = ecs::wait(&fast(&sink, "create", Duration::from_millis(30)), || {
            steady_progress(&client, "main", ARN)
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.contains("timeouts.create"), "{e}");
        assert!(e.contains("0/1 tasks running"), "{e}");
    }

    #[tokio::test]
    async fn deletes_wait_through_draining_until_inactive() {
        let draining = || {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_arn(ARN)
                        .status("DRAINING")
                        .running_count(1)
                        .build(),
                )
                .build()
        };
        let inactive = || {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_arn(ARN)
                        .status("INACTIVE")
                        .build(),
                )
                .build()
        };
        let rule = mock!(Client::describe_services)
            .sequence()
            .output(draining)
            .times(2)
            .output(inactive)
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);
        let (sink, seen) = sink();
        ecs::wait(&fast(&sink, "delete", Duration::from_secs(10)), || {
            delete_progress(&client, "main", ARN)
        })
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "ecs_service.api: draining (1 tasks running)",
                "ecs_service.api: deleted"
            ]
        );
    }

    #[test]
    fn names_and_families_match_the_arns_ecs_answers_with() {
        let live: Fields = [
            ("cluster", "arn:aws:ecs:us-east-1:1:cluster/main"),
            (
                "task_definition",
                "arn:aws:ecs:us-east-1:1:task-definition/keycloak:7",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::str(v)))
        .collect();
        let differs = |cluster: &str, td: &str| -> Vec<String> {
            let want: Fields = [("cluster", cluster), ("task_definition", td)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::str(v)))
                .collect();
            EcsService
                .diff(&want, &live)
                .into_iter()
                .map(|c| c.field)
                .collect()
        };
        assert!(differs("main", "keycloak:7").is_empty());
        assert!(differs("main", "keycloak").is_empty());
        assert_eq!(differs("mai", "keycloak:6"), ["cluster", "task_definition"]);
        assert_eq!(
            differs("main", "arn:aws:ecs:us-east-1:1:task-definition/keycloak:6"),
            ["task_definition"]
        );
    }

    #[test]
    fn a_fargate_service_needs_subnets() {
        let mut f = Fields::new();
        f.insert("launch_type".into(), Value::str("FARGATE"));
        assert!(problems(&f)[0].1.contains("subnets"));
        f.insert("subnets".into(), Value::List(vec![Value::str("subnet-1")]));
        f.insert("deployment_maximum_percent".into(), Value::Int(50));
        let p = problems(&f);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, Some("deployment_maximum_percent"));
    }

    /// The loader refuses these where they are written, before any call.
    #[test]
    fn plain_ranges_are_the_schema_s() {
        let range = |k: &str| SCHEMA.field(k).and_then(|f| f.range);
        assert_eq!(range("deployment_minimum_healthy_percent"), Some((0, 100)));
        assert_eq!(
            range("health_check_grace_period_seconds"),
            Some((0, 2_147_483_647))
        );
        let port = LB_FIELDS.iter().find(|f| f.name == "container_port");
        assert_eq!(port.and_then(|f| f.range), Some((1, 65535)));
    }
}
