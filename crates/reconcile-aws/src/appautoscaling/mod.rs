//! Application Auto Scaling: scalable targets and their scaling policies.
//!
//! Neither has an id of its own that AWS keeps stable everywhere (the emulator
//! gives a policy a new ARN on every put), so both are known by their natural
//! key: `NAMESPACE/RESOURCE_ID/DIMENSION` for a target, with `/POLICY_NAME`
//! after it for a policy (Terraform's import ids). AWS keeps one target per key
//! and one policy per key and name, and registering or putting again updates
//! in place: an interrupted create is completed by the next apply, never
//! duplicated, so neither kind needs tags to be found again.

pub mod appautoscaling_policy;
pub mod appautoscaling_target;

use crate::kit::ProviderError;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The dimension an ECS service's task count is scaled by.
pub const ECS_DESIRED_COUNT: &str = "ecs:service:DesiredCount";

/// Every service namespace AWS knows.
pub const NAMESPACES: &[&str] = ServiceNamespace::values();
/// Every scalable dimension AWS knows.
pub const DIMENSIONS: &[&str] = ScalableDimension::values();

/// Typed errors; a target or policy that is not there is `NotFound`, however
/// the endpoint says it (AWS: ObjectNotFoundException; the emulator: a
/// ValidationException saying "No scalable target found").
pub fn aas_error<E, R>(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let missing = e.as_service_error().is_some_and(|se| {
        se.code() == Some("ObjectNotFoundException")
            || se.message().is_some_and(|m| {
                m.starts_with("No scalable target found")
                    || m.starts_with("No scaling policy found")
            })
    });
    match ProviderError::from_sdk(e) {
        ProviderError::NotFound(m) => ProviderError::NotFound(m),
        other if missing => ProviderError::NotFound(other.to_string()),
        other => other,
    }
}

/// A target's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
}

impl Key {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.resource_id, self.dimension)
    }

    /// Reads `NAMESPACE/RESOURCE_ID/DIMENSION[/NAME]`: the namespace has no
    /// slash, and the dimension is the first segment after it that is one of
    /// AWS's dimensions of that namespace; what follows is a policy's name.
    pub fn parse(id: &str) -> Option<(Key, Option<String>)> {
        let (namespace, rest) = id.split_once('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        let at = segments
            .iter()
            .position(|s| DIMENSIONS.contains(s) && s.starts_with(&format!("{namespace}:")))?;
        if at == 0 {
            return None;
        }
        let name = segments[at + 1..].join("/");
        Some((
            Key {
                namespace: namespace.to_string(),
                resource_id: segments[..at].join("/"),
                dimension: segments[at].to_string(),
            },
            (!name.is_empty()).then_some(name),
        ))
    }
}

/// What to say of an id that is no key.
pub fn bad_id(id: &str, what: &str) -> ProviderError {
    ProviderError::InvalidInput(format!(
        "\"{id}\" is not {what} (NAMESPACE/RESOURCE_ID/DIMENSION, like \
         ecs/service/main/api/ecs:service:DesiredCount)"
    ))
}

/// Problems with a namespace, resource id and dimension as declared (values
/// that are references are checked once resolved, at apply).
pub fn key_problems(
    namespace: Option<&str>,
    resource_id: Option<&str>,
    dimension: Option<&str>,
) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let literal = |s: Option<&str>| s.filter(|s| !s.contains("${")).map(str::to_string);
    let (ns, dim) = (literal(namespace), literal(dimension));
    if let (Some(ns), Some(dim)) = (&ns, &dim) {
        if !dim.starts_with(&format!("{ns}:")) {
            out.push((
                "scalable_dimension",
                format!("{dim} is not a dimension of the {ns} namespace"),
                format!("use one that starts with \"{ns}:\", like \"{ECS_DESIRED_COUNT}\" for ECS"),
            ));
        }
    }
    if ns.as_deref() == Some("ecs") {
        if let Some(rid) =
            resource_id.filter(|r| !r.starts_with("service/") && !r.starts_with("${"))
        {
            out.push((
                "resource_id",
                format!("\"{rid}\" is not an ECS service's resource id"),
                "write service/CLUSTER/SERVICE, like \
                 \"service/${ecs_cluster.main.name}/${ecs_service.api.name}\""
                    .to_string(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_what_they_write_names_with_slashes_included() {
        let k = Key {
            namespace: "ecs".into(),
            resource_id: "service/main/api".into(),
            dimension: ECS_DESIRED_COUNT.into(),
        };
        assert_eq!(k.id(), "ecs/service/main/api/ecs:service:DesiredCount");
        assert_eq!(Key::parse(&k.id()), Some((k.clone(), None)));
        let policy = format!("{}/cpu/70", k.id());
        assert_eq!(Key::parse(&policy), Some((k, Some("cpu/70".into()))));
        assert_eq!(Key::parse("ecs/service/main/api"), None);
        assert_eq!(Key::parse("ecs/ecs:service:DesiredCount"), None);
    }

    #[test]
    fn a_dimension_must_belong_to_its_namespace_and_ecs_ids_name_a_service() {
        assert!(key_problems(Some("ecs"), Some("service/a/b"), Some(ECS_DESIRED_COUNT)).is_empty());
        let p = key_problems(Some("dynamodb"), Some("table/t"), Some(ECS_DESIRED_COUNT));
        assert_eq!(p[0].0, "scalable_dimension");
        let p = key_problems(Some("ecs"), Some("cluster/a"), Some(ECS_DESIRED_COUNT));
        assert_eq!(p[0].0, "resource_id");
        // References are checked once resolved.
        assert!(key_problems(Some("${x.y.ns}"), Some("${x.y.id}"), Some("${x.y.d}")).is_empty());
    }
}
