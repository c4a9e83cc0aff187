//! Observing a stack: the live view of everything state tracks, in one batched call
//! per kind, and recovery of creates that an interrupted apply left untracked.

use crate::kit::{Cx, ProviderError};
use crate::registry::Registry;
use futures::future::join_all;
use indexmap::IndexMap;
use reconcile_core::model::Stack;
use reconcile_core::plan::{desired_tags, tags_value, Adoption, Observed};
use reconcile_core::state::State;
use std::collections::{BTreeMap, HashMap};

pub struct Observation {
    /// Every state address: `Some` when it exists, `None` when gone.
    pub observed: HashMap<String, Option<Observed>>,
    /// Resources found by their tags that state does not track.
    pub adoptions: Vec<Adoption>,
}

/// An observe failure, naming the kind whose describe failed.
#[derive(Debug, thiserror::Error)]
#[error("observing {kind}: {source}")]
pub struct ObserveError {
    pub kind: String,
    pub source: ProviderError,
}

/// Observes the stack's tracked resources (one describe per kind, kinds in
/// parallel) and looks for untracked ones by tag where a create is due: a
/// desired resource missing from state, or an interrupted create in the journal.
/// Kinds whose describe answers without tags share one read of the whole
/// stack's tags (the stack tag index), made for this pass only.
pub async fn observe_stack(
    cx: &Cx,
    registry: &Registry,
    stack: Option<&Stack>,
    state: &State,
) -> Result<Observation, ObserveError> {
    let pass = cx.for_observe_pass();
    let cx = &pass;
    let mut by_kind: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for r in state.resources.values() {
        by_kind
            .entry(r.kind.as_str())
            .or_default()
            .push((r.address.clone(), r.id.clone()));
    }
    let reads = by_kind.iter().map(|(kind, items)| async move {
        let p = registry.get(kind).ok_or_else(|| ObserveError {
            kind: kind.to_string(),
            source: ProviderError::Other(format!(
                "state holds unknown kind `{kind}`; upgrade reconcile"
            )),
        })?;
        let mut ids: Vec<String> = items.iter().map(|(_, id)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        p.observe(cx, &ids)
            .await
            .map(|found| (kind.to_string(), found))
            .map_err(|source| ObserveError {
                kind: kind.to_string(),
                source,
            })
    });
    let results = join_all(reads).await;
    // Keyed by kind too: RDS names a subnet group and an instance alike.
    let mut live_by_id: HashMap<(String, String), Observed> = HashMap::new();
    for r in results {
        let (kind, found) = r?;
        live_by_id.extend(found.into_iter().map(|(id, o)| ((kind.clone(), id), o)));
    }
    let mut observed: HashMap<String, Option<Observed>> = state
        .resources
        .values()
        .map(|r| {
            let live = live_by_id.get(&(r.kind.clone(), r.id.clone())).cloned();
            (r.address.clone(), live)
        })
        .collect();
    if let Some(stack) = stack {
        let live = observed
            .iter()
            .filter_map(|(a, o)| Some((a.as_str(), state.resources[a].kind.as_str(), o.as_ref()?)));
        let fresh = confirm_indexed_tags(cx, registry, stack, live).await?;
        for (address, live) in observed.iter_mut() {
            let Some(o) = live else { continue };
            match fresh.get(&(state.resources[address].kind.clone(), o.id.clone())) {
                Some(Some(tags)) => o.tags = tags.clone(),
                Some(None) => *live = None,
                None => {}
            }
        }
        observe_against_desired(cx, registry, stack, &mut observed).await?;
    }

    // Addresses that will need a create: look for a tagged leftover first.
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(stack) = stack {
        for r in stack.resources.values() {
            if observed.get(&r.address).is_none_or(Option::is_none) {
                wanted
                    .entry(r.kind.clone())
                    .or_default()
                    .push(r.address.clone());
            }
        }
    }
    for j in &state.journal {
        if j.op == reconcile_core::state::JournalOp::Create
            && observed.get(&j.address).is_none_or(Option::is_none)
        {
            let v = wanted.entry(j.kind.clone()).or_default();
            if !v.contains(&j.address) {
                v.push(j.address.clone());
            }
        }
    }
    let finds = wanted.iter().filter_map(|(kind, addrs)| {
        let p = registry.get(kind)?;
        if !p.schema().taggable {
            return None;
        }
        Some(async move {
            p.find_tagged(cx, addrs)
                .await
                .map(|found| (kind.clone(), found))
                .map_err(|source| ObserveError {
                    kind: kind.clone(),
                    source,
                })
        })
    });
    // Copies state already tracks (the current one, or an old one kept for
    // deletion) are not leftovers, whatever their tags say.
    let tracked: std::collections::HashSet<(&str, &str)> = state
        .resources
        .values()
        .chain(state.deposed.iter())
        .map(|r| (r.kind.as_str(), r.id.as_str()))
        .collect();
    let mut adoptions = Vec::new();
    for r in join_all(finds).await {
        let (kind, mut found) = r?;
        found.retain(|(_, o)| !tracked.contains(&(kind.as_str(), o.id.as_str())));
        found.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
        for (address, obs) in found {
            adoptions.push(Adoption {
                address,
                kind: kind.clone(),
                observed: obs,
            });
        }
    }
    if let Some(stack) = stack {
        let live = adoptions
            .iter()
            .map(|a| (a.address.as_str(), a.kind.as_str(), &a.observed));
        let fresh = confirm_indexed_tags(cx, registry, stack, live).await?;
        adoptions.retain_mut(
            |a| match fresh.get(&(a.kind.clone(), a.observed.id.clone())) {
                Some(Some(tags)) => {
                    a.observed.tags = tags.clone();
                    true
                }
                Some(None) => false,
                None => true,
            },
        );
        adoptions_against_desired(cx, registry, stack, &mut adoptions).await?;
    }
    Ok(Observation {
        observed,
        adoptions,
    })
}

/// Tags re-read with the kinds' own calls, by (kind, id): `Some(None)` for a
/// resource gone meanwhile. Only for resources whose tags came from the stack
/// tag index and differ from the declared ones: the Tagging API is eventually
/// consistent, so right after an apply it may still answer the old tags, and
/// those must not show as drift. Tags that match need no second look, and
/// tags read with the kind's own call are fresh already. One call per kind,
/// kinds in parallel.
async fn confirm_indexed_tags<'a>(
    cx: &Cx,
    registry: &Registry,
    stack: &Stack,
    live: impl Iterator<Item = (&'a str, &'a str, &'a Observed)>,
) -> Result<HashMap<(String, String), Option<IndexMap<String, String>>>, ObserveError> {
    let Some(index) = cx.stack_tags.as_ref() else {
        return Ok(HashMap::new());
    };
    // kind -> (id, ARN) of the tag sets to confirm.
    let mut doubtful: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (address, kind, o) in live {
        let Some(r) = stack.resources.get(address) else {
            continue;
        };
        // The planner compares no tags here either.
        let taggable = registry.get(kind).is_some_and(|p| p.schema().taggable);
        if !taggable || r.ignore_changes.iter().any(|f| f == "tags") {
            continue;
        }
        let Some(arn) = index.served_arn(kind, &o.id) else {
            continue;
        };
        if tags_value(&o.tags) != tags_value(&desired_tags(stack, address)) {
            doubtful.entry(kind).or_default().push((o.id.clone(), arn));
        }
    }
    let reads = doubtful.into_iter().filter_map(|(kind, items)| {
        let p = registry.get(kind)?;
        Some(async move {
            let arns: Vec<String> = items.iter().map(|(_, arn)| arn.clone()).collect();
            tracing::debug!(
                kind,
                count = arns.len(),
                "confirming tags the Tagging API answered"
            );
            let read = p
                .read_tags(cx, &arns)
                .await
                .map_err(|source| ObserveError {
                    kind: kind.to_string(),
                    source,
                })?;
            let Some(mut read) = read else {
                // A kind that takes tags from the index without a read of its
                // own: keep what the index said rather than fail the plan.
                tracing::warn!(kind, "tags from the Tagging API cannot be confirmed");
                return Ok(vec![]);
            };
            Ok(items
                .into_iter()
                .map(|(id, arn)| ((kind.to_string(), id), read.remove(&arn)))
                .collect::<Vec<_>>())
        })
    });
    let mut out = HashMap::new();
    for r in join_all(reads).await {
        out.extend(r?);
    }
    Ok(out)
}

/// Lets each kind judge live values that only make sense next to the desired
/// configuration (a secret's value against its environment variable), one
/// batch per kind, kinds in parallel.
async fn observe_against_desired(
    cx: &Cx,
    registry: &Registry,
    stack: &Stack,
    observed: &mut HashMap<String, Option<Observed>>,
) -> Result<(), ObserveError> {
    let pairs = observed
        .iter_mut()
        .filter_map(|(address, live)| Some((stack.resources.get(address)?, live.as_mut()?)));
    judge_against_desired(cx, registry, pairs).await
}

/// The same for copies found by their tags: an adoption is compared with its
/// declaration like any tracked resource, so it plans no change it does not need.
async fn adoptions_against_desired(
    cx: &Cx,
    registry: &Registry,
    stack: &Stack,
    adoptions: &mut [Adoption],
) -> Result<(), ObserveError> {
    let pairs = adoptions
        .iter_mut()
        .filter_map(|a| Some((stack.resources.get(&a.address)?, &mut a.observed)));
    judge_against_desired(cx, registry, pairs).await
}

async fn judge_against_desired<'a>(
    cx: &Cx,
    registry: &Registry,
    pairs: impl Iterator<Item = (&'a reconcile_core::model::Resource, &'a mut Observed)>,
) -> Result<(), ObserveError> {
    type Pairs<'a> = Vec<(&'a reconcile_core::model::Resource, &'a mut Observed)>;
    let mut by_kind: BTreeMap<&str, Pairs> = BTreeMap::new();
    for (r, live) in pairs {
        by_kind.entry(r.kind.as_str()).or_default().push((r, live));
    }
    let runs = by_kind.into_iter().filter_map(|(kind, mut items)| {
        let p = registry.get(kind)?;
        Some(async move {
            p.observe_against_desired(cx, &mut items)
                .await
                .map_err(|source| ObserveError {
                    kind: kind.to_string(),
                    source,
                })
        })
    });
    for r in join_all(runs).await {
        r?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The stack tag index against staged answers: what the Tagging API says
    //! and what CloudWatch Logs says can disagree, as they do in AWS for a
    //! while after a tag change.

    use super::*;
    use crate::kit::testing;
    use crate::kit::{AwsOptions, CallCounter};
    use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
    use aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::{
        ListTagsForResourceError, ListTagsForResourceOutput,
    };
    use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
    use aws_sdk_cloudwatchlogs::types::LogGroup;
    use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
    use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use reconcile_core::graph::Graph;
    use reconcile_core::model::{Fields, Value};
    use reconcile_core::plan::{compute, Action, Plan, PlanInput};
    use reconcile_core::state::StateResource;

    const ADDRESS: &str = "log_group.app";
    const ARN: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/app";

    fn declared() -> IndexMap<String, String> {
        [("reconcile:address", ADDRESS), ("reconcile:stack", "s")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with(extra: &[(&str, &str)]) -> IndexMap<String, String> {
        let mut t = declared();
        t.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        t
    }

    fn describe() -> Rule {
        mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(|| {
            DescribeLogGroupsOutput::builder()
                .log_groups(
                    LogGroup::builder()
                        .log_group_name("/app")
                        .arn(format!("{ARN}:*"))
                        .log_group_arn(ARN)
                        .build(),
                )
                .build()
        })
    }

    fn index(tags: IndexMap<String, String>) -> Rule {
        mock!(aws_sdk_resourcegroupstagging::Client::get_resources).then_output(move || {
            GetResourcesOutput::builder()
                .pagination_token("")
                .resource_tag_mapping_list(
                    ResourceTagMapping::builder()
                        .resource_arn(ARN)
                        .set_tags(Some(
                            tags.iter()
                                .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                                .collect(),
                        ))
                        .build(),
                )
                .build()
        })
    }

    fn own_read(tags: IndexMap<String, String>) -> Rule {
        mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some(ARN))
            .then_output(move || {
                ListTagsForResourceOutput::builder()
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .build()
            })
    }

    /// Clients that answer from the staged rules; nothing reaches the network.
    async fn cx(logs: &[&Rule], tagging: &Rule) -> Cx {
        let opts = AwsOptions {
            region: "us-east-1".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        };
        let mut cx = Cx::connect(&opts, "s", CallCounter::default()).await;
        cx.logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, logs);
        cx.tagging = mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, [tagging]);
        cx
    }

    fn stack_and_state() -> (Stack, State) {
        let stack = testing::stack(vec![testing::resource(
            ADDRESS,
            &[("name", Value::str("/app"))],
        )]);
        let mut inputs = Fields::new();
        inputs.insert("name".into(), Value::str("/app"));
        inputs.insert("tags".into(), tags_value(&declared()));
        let mut state = State::empty("s", "us-east-1");
        state.resources.insert(
            ADDRESS.into(),
            StateResource {
                address: ADDRESS.into(),
                kind: "log_group".into(),
                id: "/app".into(),
                inputs,
                attributes: Fields::new(),
                dependencies: vec![],
                protect: false,
            },
        );
        (stack, state)
    }

    async fn observe_and_plan(cx: &Cx) -> (Observation, Plan) {
        let registry = Registry::default();
        let (stack, state) = stack_and_state();
        let obs = observe_stack(cx, &registry, Some(&stack), &state)
            .await
            .expect("observe");
        let graph = Graph::build(&stack).expect("graph");
        let plan = compute(PlanInput {
            stack: &stack,
            graph: &graph,
            state: &state,
            observed: &obs.observed,
            adoptions: vec![],
            catalog: &registry,
            destroy: false,
            targets: &[],
        })
        .expect("plan");
        (obs, plan)
    }

    #[tokio::test]
    async fn stale_index_tags_are_confirmed_with_the_kinds_own_read_and_show_no_drift() {
        // An apply just removed `Team`; the Tagging API still shows it.
        let (describe, index, own) = (
            describe(),
            index(with(&[("Team", "old")])),
            own_read(declared()),
        );
        let cx = cx(&[&describe, &own], &index).await;
        let (obs, plan) = observe_and_plan(&cx).await;
        let live = obs.observed[ADDRESS].as_ref().expect("observed");
        assert_eq!(live.tags, declared());
        assert_eq!((index.num_calls(), own.num_calls()), (1, 1));
        assert!(!plan.has_changes(), "false drift: {:?}", plan.steps);
    }

    #[tokio::test]
    async fn index_tags_that_match_the_declaration_cost_no_tag_read() {
        let (describe, index, own) = (describe(), index(declared()), own_read(declared()));
        let cx = cx(&[&describe, &own], &index).await;
        let (_, plan) = observe_and_plan(&cx).await;
        assert_eq!((index.num_calls(), own.num_calls()), (1, 0));
        assert!(!plan.has_changes(), "{:?}", plan.steps);
    }

    #[tokio::test]
    async fn a_tag_changed_out_of_band_is_still_drift_after_the_confirmation() {
        let (describe, index, own) = (
            describe(),
            index(with(&[("Team", "them")])),
            own_read(with(&[("Team", "them")])),
        );
        let cx = cx(&[&describe, &own], &index).await;
        let (_, plan) = observe_and_plan(&cx).await;
        assert_eq!(own.num_calls(), 1);
        let step = plan.steps.iter().find(|s| s.address == ADDRESS).unwrap();
        assert_eq!(step.action, Action::Update);
        assert!(step.drift, "{step:?}");
        assert!(step.changes.iter().any(|c| c.field == "tags"), "{step:?}");
    }

    #[tokio::test]
    async fn missing_from_the_index_is_read_by_the_kind() {
        let describe = describe();
        let own = own_read(declared());
        let empty = mock!(aws_sdk_resourcegroupstagging::Client::get_resources)
            .then_output(|| GetResourcesOutput::builder().pagination_token("").build());
        let cx = cx(&[&describe, &own], &empty).await;
        let (obs, plan) = observe_and_plan(&cx).await;
        assert_eq!(obs.observed[ADDRESS].as_ref().unwrap().tags, declared());
        assert_eq!((empty.num_calls(), own.num_calls()), (1, 1));
        assert!(!plan.has_changes(), "{:?}", plan.steps);
    }

    #[tokio::test]
    async fn a_resource_gone_before_its_confirmation_is_gone() {
        let describe = describe();
        let index = index(with(&[("Team", "old")]));
        let gone = mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource).then_error(|| {
            ListTagsForResourceError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .build(),
                    )
                    .build(),
            )
        });
        let cx = cx(&[&describe, &gone], &index).await;
        let (obs, plan) = observe_and_plan(&cx).await;
        assert!(obs.observed[ADDRESS].is_none());
        let step = plan.steps.iter().find(|s| s.address == ADDRESS).unwrap();
        assert_eq!(step.action, Action::Create);
    }

    #[tokio::test]
    async fn every_observe_pass_reads_the_index_afresh() {
        // A daemon keeps its clients for months: no pass may answer from an
        // earlier pass's read.
        let (describe, index, own) = (describe(), index(declared()), own_read(declared()));
        let cx = cx(&[&describe, &own], &index).await;
        observe_and_plan(&cx).await;
        observe_and_plan(&cx).await;
        assert_eq!((index.num_calls(), own.num_calls()), (2, 0));
        assert!(cx.stack_tags.is_none());
    }

    #[tokio::test]
    async fn outside_an_observe_pass_kinds_read_their_own_tags() {
        let (describe, index, own) = (describe(), index(declared()), own_read(declared()));
        let cx = cx(&[&describe, &own], &index).await;
        let p = Registry::default().get("log_group").unwrap().clone();
        let found = p.observe(&cx, &["/app".to_string()]).await.unwrap();
        assert_eq!(found["/app"].tags, declared());
        assert_eq!((index.num_calls(), own.num_calls()), (0, 1));
    }
}
