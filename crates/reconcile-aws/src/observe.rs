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
        if r.ignore_changes.iter().any(|f| f == "tags") {
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
    type Pairs<'a> = Vec<(&'a reconcile_core::model::Resource, &'a mut Observed)>;
    let mut by_kind: BTreeMap<&str, Pairs> = BTreeMap::new();
    for (address, live) in observed.iter_mut() {
        if let (Some(r), Some(live)) = (stack.resources.get(address), live.as_mut()) {
            by_kind.entry(r.kind.as_str()).or_default().push((r, live));
        }
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
