//! Tags: the difference between the tags a resource has and the ones it should
//! have, and reading reconcile's own `reconcile:*` tags back.

use super::Cx;
use indexmap::IndexMap;
use reconcile_core::plan::{TAG_ADDRESS, TAG_STACK};

/// Tag keys to remove so that `have` becomes `want`. AWS's own `aws:` tags are
/// never touched: AWS refuses to remove them.
pub fn tag_keys_to_remove(
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Vec<String> {
    have.keys()
        .filter(|k| !want.contains_key(*k) && !k.starts_with("aws:"))
        .cloned()
        .collect()
}

/// Tags to add or overwrite so that `have` becomes `want`.
pub fn tags_to_set(
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> IndexMap<String, String> {
    want.iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The `reconcile:address` of a resource tagged with this stack, if any.
pub fn stack_address(cx: &Cx, tags: &IndexMap<String, String>) -> Option<String> {
    (tags.get(TAG_STACK) == Some(&cx.stack))
        .then(|| tags.get(TAG_ADDRESS).cloned())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_changes_leave_aws_tags_and_equal_values_alone() {
        let have = tags(&[("a", "1"), ("b", "2"), ("aws:cloudformation:stack", "x")]);
        let want = tags(&[("a", "1"), ("b", "3"), ("c", "4")]);
        assert!(tag_keys_to_remove(&have, &want).is_empty());
        assert_eq!(tags_to_set(&have, &want), tags(&[("b", "3"), ("c", "4")]));
        let want = tags(&[("b", "2")]);
        assert_eq!(tag_keys_to_remove(&have, &want), ["a"]);
        assert!(tags_to_set(&have, &want).is_empty());
    }
}
