//! The conformance harness: one run of every step for one [`Fixture`], against
//! its own moto, through the real binary where a user would act and through the
//! library where only an interrupted apply or a budget can be staged.

use crate::common::{Moto, Project, REGION};
use indexmap::IndexMap;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, Registry};
use reconcile_core::model::{Fields, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type Oob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Kinds whose tags the emulator sets at create but cannot change afterwards
/// (moto implements TagResource for API Gateway stages only): the in-place tag
/// update is skipped for them; every other step runs.
const TAGS_FIXED_BY_EMULATOR: &[&str] = &["api_gateway_rest_api"];

/// One kind's entry in the conformance table.
pub struct Fixture {
    pub kind: &'static str,
    /// The resource under test and what it needs, without `[stack]`. The resource
    /// under test comes last: the harness appends its `tags` line to it.
    pub toml: &'static str,
    pub address: &'static str,
    /// Applied in order, each on top of the previous.
    pub updates: &'static [Edit],
    /// Each planned against the TOML as the updates left it.
    pub replaces: &'static [Replace],
    pub drift: Drift,
    /// Makes the i-th budget copy unique (a name, a range) where AWS wants that.
    pub vary: fn(&mut Fields, usize),
    /// The most AWS calls observing `n` resources of the kind may cost in an
    /// observe pass (the stack tag index's GetResources included).
    pub budget: fn(u64) -> u64,
}

/// A TOML edit (`from` replaced once by `to`) and the field it must change.
pub struct Edit {
    pub from: &'static str,
    pub to: &'static str,
    pub field: &'static str,
}

/// An edit that must force a replacement; `apply` where doing it is cheap.
pub struct Replace {
    pub from: &'static str,
    pub to: &'static str,
    pub field: &'static str,
    pub apply: bool,
}

/// A change made behind reconcile's back: `change(endpoint, id)` with an
/// independent SDK client, and the field the plan must then report.
pub struct Drift {
    pub field: &'static str,
    pub change: fn(String, String) -> Oob,
}

/// An SDK config independent of reconcile's, for out-of-band changes.
pub async fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(url)
        .load()
        .await
}

/// Budget copies per kind: enough that a per-resource call would exceed a batched budget.
const N: usize = 10;

struct Run<'a> {
    f: &'a Fixture,
    moto: Moto,
    p: Project,
    stack: String,
    text: String,
    provider: Arc<dyn Provider>,
}

/// The header line and change lines of one address's block in a text plan.
fn block<'o>(out: &'o str, address: &str) -> Option<(&'o str, Vec<&'o str>)> {
    let mut lines = out.lines();
    let header = lines.find(|l| {
        let mut w = l.split_whitespace();
        // `!` lines are adoptions, not steps.
        l.starts_with("  ")
            && !l.starts_with("      ")
            && w.next() != Some("!")
            && w.next() == Some(address)
    })?;
    let body = lines.take_while(|l| l.starts_with("      ")).collect();
    Some((header, body))
}

fn names_field(body: &[impl AsRef<str>], field: &str) -> bool {
    body.iter()
        .any(|l| l.as_ref().split_whitespace().next() == Some(field))
}

impl Run<'_> {
    fn write(&self) {
        let file = format!(
            "[stack]\nname = \"{}\"\nregion = \"{REGION}\"\n\n{}",
            self.stack, self.text
        );
        self.p.write("stack.toml", &file);
    }

    fn edit(&mut self, from: &str, to: &str) {
        assert!(
            self.text.contains(from),
            "{}: fixture edit `{from}` not in\n{}",
            self.f.kind,
            self.text
        );
        self.text = self.text.replacen(from, to, 1);
        self.write();
    }

    fn cli(&self, args: &[&str]) -> crate::common::Run {
        self.p.run_at(&self.moto.url, args)
    }

    fn apply(&self) -> crate::common::Run {
        let r = self.cli(&["apply", "--auto-approve"]);
        r.expect_code(0);
        r
    }

    #[track_caller]
    fn plan_clean(&self, after: &str) {
        let r = self.cli(&["plan", "--detailed-exitcode"]);
        assert_eq!(
            r.code, 0,
            "{}: not clean after {after}:\n{}{}",
            self.f.kind, r.stdout, r.stderr
        );
        assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    }

    /// Plans with changes and returns the address's header and change lines.
    #[track_caller]
    fn plan_block(&self, what: &str) -> (String, Vec<String>, String) {
        let r = self.cli(&["plan", "--detailed-exitcode"]);
        assert_eq!(
            r.code, 2,
            "{}: {what}: expected changes:\n{}{}",
            self.f.kind, r.stdout, r.stderr
        );
        let (h, body) = block(&r.stdout, self.f.address)
            .unwrap_or_else(|| panic!("{what}: {} not in the plan:\n{}", self.f.address, r.stdout));
        (
            h.to_string(),
            body.into_iter().map(str::to_string).collect(),
            r.stdout.clone(),
        )
    }

    fn state_id(&self) -> String {
        self.p.state_json(&self.stack)["resources"][self.f.address]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no id in state", self.f.address))
            .to_string()
    }

    async fn cx(&self, stack: &str) -> Cx {
        let opts = AwsOptions {
            region: REGION.into(),
            endpoint_url: Some(self.moto.url.clone()),
        };
        Cx::connect(&opts, stack, CallCounter::default()).await
    }

    /// The copies of the address the stack's tags lead to, by id.
    async fn tagged(&self) -> Vec<String> {
        let cx = self.cx(&self.stack).await;
        let found = self
            .provider
            .find_tagged(&cx, &[self.f.address.to_string()])
            .await
            .expect("find_tagged");
        found.into_iter().map(|(_, o)| o.id).collect()
    }

    async fn observed(&self, id: &str) -> bool {
        let cx = self.cx(&self.stack).await;
        let found = self.provider.observe(&cx, &[id.to_string()]).await;
        found.expect("observe").contains_key(id)
    }

    /// The last applied inputs, split into fields and the full tag set.
    fn applied(&self) -> (Fields, IndexMap<String, String>) {
        let r = &self.p.state_json(&self.stack)["resources"][self.f.address];
        let Value::Map(mut fields) = Value::from_json(r["inputs"].clone()).unwrap() else {
            panic!("inputs of {} are not a table", self.f.address)
        };
        let tags = match fields.shift_remove("tags") {
            Some(Value::Map(t)) => t
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            _ => IndexMap::new(),
        };
        (fields, tags)
    }
}

async fn create(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> String {
    let token = uuid::Uuid::new_v4().to_string();
    let want = Desired {
        address,
        fields: f,
        tags: t,
        token: &token,
        replacing: None,
    };
    p.create(cx, &want)
        .await
        .unwrap_or_else(|e| panic!("create {address}: {e}"))
        .id
}

pub async fn run(f: &Fixture) {
    let provider = Registry::default()
        .get(f.kind)
        .unwrap_or_else(|| panic!("{} is not registered", f.kind))
        .clone();
    // A kind without tags (security_group_rule) skips the steps about tags and is
    // adopted by its content instead.
    let taggable = provider.schema().taggable;
    let text = if taggable {
        format!("{}tags = {{ Conformance = \"one\" }}\n", f.toml)
    } else {
        f.toml.to_string()
    };
    let mut r = Run {
        f,
        moto: Moto::start(),
        p: Project::new(),
        stack: format!("conf-{}", f.kind.replace('_', "-")),
        text,
        provider,
    };
    r.write();
    let addr = f.address;

    // (1) From nothing: the binary creates it, and the kind observes it under that id.
    r.apply();
    let id = r.state_id();
    assert!(
        r.observed(&id).await,
        "{addr} ({id}) is not observed after apply"
    );
    if taggable {
        assert_eq!(
            r.tagged().await,
            vec![id.clone()],
            "{addr}: its tags do not lead to it"
        );
    }

    // (2) Observe equals desired.
    r.plan_clean("the first apply");

    // (3) In place, the tag set first: every tagged kind must update it in place.
    let tags = Edit {
        from: "Conformance = \"one\"",
        to: "Conformance = \"two\"",
        field: "tags",
    };
    let tags_in_place = taggable && !TAGS_FIXED_BY_EMULATOR.contains(&f.kind);
    for e in tags_in_place.then_some(&tags).into_iter().chain(f.updates) {
        r.edit(e.from, e.to);
        let (h, body, out) = r.plan_block(e.field);
        assert!(h.contains("update in place"), "{}: {h}\n{out}", e.field);
        assert!(
            names_field(&body, e.field),
            "{}: not named:\n{out}",
            e.field
        );
        r.apply();
        assert_eq!(
            r.state_id(),
            id,
            "{addr}: updating {} changed the id",
            e.field
        );
        r.plan_clean(e.field);
    }

    // (4) Replace-forcing edits; undone unless applied, so each starts from the same text.
    for e in f.replaces {
        let before = r.text.clone();
        let old = r.state_id();
        r.edit(e.from, e.to);
        let (h, _, out) = r.plan_block(e.field);
        assert!(h.contains("replace ("), "{}: {h}\n{out}", e.field);
        let why = h.split("replace (").nth(1).unwrap_or_default();
        let forcing = why.split(" force").next().unwrap_or_default();
        assert!(
            forcing.split(", ").any(|x| x == e.field),
            "{}: not named as forcing replacement: {h}",
            e.field
        );
        if e.apply {
            r.apply();
            let new = r.state_id();
            assert_ne!(new, old, "{addr}: replaced under the same id");
            assert!(
                !r.observed(&old).await,
                "{addr}: the old copy {old} is still there"
            );
            if taggable {
                assert_eq!(
                    r.tagged().await,
                    [new],
                    "{addr}: copies after the replacement"
                );
            } else {
                assert!(r.observed(&new).await, "{addr}: {new} not observed");
            }
            r.plan_clean(e.field);
        } else {
            r.text = before;
            r.write();
        }
    }

    // (5) Drift: changed with another client, reported by field, repaired by apply.
    let id = r.state_id();
    (f.drift.change)(r.moto.url.clone(), id.clone()).await;
    let (h, body, out) = r.plan_block("drift");
    // An untagged kind is known by its content: changed by hand, it can also be gone.
    let gone = !taggable && h.contains("create — deleted outside reconcile");
    assert!(h.contains("drift") || gone, "{h}\n{out}");
    assert!(
        names_field(&body, f.drift.field),
        "{}: not named:\n{out}",
        f.drift.field
    );
    r.apply();
    r.plan_clean("repairing drift");

    // (6) Adopt by tags: what an apply interrupted after its create leaves behind.
    let (fields, tags) = r.applied();
    if !taggable {
        let orphan = adopt_by_content(&r, &id).await;
        return budget_and_destroy(&r, fields, tags, orphan, taggable).await;
    }
    assert_eq!(
        tags.get("reconcile:address").map(String::as_str),
        Some(addr)
    );
    r.cli(&["state", "rm", addr]).expect_code(0);
    let cx = r.cx(&r.stack).await;
    let applied = Some(&fields);
    r.provider
        .delete_applied(&cx, &id, applied)
        .await
        .expect("delete");
    let orphan = create(&*r.provider, &cx, addr, &fields, &tags).await;
    let plan = r.cli(&["plan"]);
    let out = &plan.expect_code(0).stdout;
    let adopted = format!("  ! {addr:<32} found untracked by its tags ({orphan})");
    assert!(out.contains(&adopted), "{addr}: not adopted:\n{out}");
    assert!(
        block(out, addr).is_none(),
        "{addr}: planned beside its adoption:\n{out}"
    );
    r.apply();
    assert_eq!(r.state_id(), orphan);
    assert_eq!(
        r.tagged().await,
        vec![orphan.clone()],
        "{addr}: a second copy was made"
    );
    r.plan_clean("adopting");
    budget_and_destroy(&r, fields, tags, orphan, taggable).await;
}

/// An untagged kind's adoption: forgotten by the state while it stays in AWS, the
/// next apply's create must find it by content and take it under the same id.
async fn adopt_by_content(r: &Run<'_>, id: &str) -> String {
    let addr = r.f.address;
    r.cli(&["state", "rm", addr]).expect_code(0);
    let (h, _, out) = r.plan_block("adopting by content");
    assert!(h.contains("create"), "{addr}: {h}\n{out}");
    r.apply();
    assert_eq!(r.state_id(), id, "{addr}: not taken under its old id");
    assert!(r.observed(id).await, "{addr}: {id} not observed");
    r.plan_clean("adopting by content");
    id.to_string()
}

async fn budget_and_destroy(
    r: &Run<'_>,
    fields: Fields,
    tags: IndexMap<String, String>,
    orphan: String,
    taggable: bool,
) {
    let (f, addr) = (r.f, r.f.address);

    // (8) Budget: a no-op observe of N copies, on a counter of its own. The copies
    // belong to another stack, so that the destroy below stays about this one.
    let other = format!("{}-budget", r.stack);
    let bcx = r.cx(&other).await;
    let mut ids = Vec::new();
    for i in 0..N {
        let a = format!("{addr}_{i}");
        let mut fi = fields.clone();
        (f.vary)(&mut fi, i);
        let mut ti = tags.clone();
        ti.insert("reconcile:stack".into(), other.clone());
        ti.insert("reconcile:address".into(), a.clone());
        ids.push((create(&*r.provider, &bcx, &a, &fi, &ti).await, fi));
    }
    let (ids, copies): (Vec<String>, Vec<Fields>) = ids.into_iter().unzip();
    // As a plan observes: with the stack tag index of an observe pass.
    let cx = r.cx(&other).await.for_observe_pass();
    let seen = r.provider.observe(&cx, &ids).await.expect("observe");
    assert_eq!(seen.len(), N, "{addr}: observed {} of {N}", seen.len());
    let (calls, budget) = (cx.calls.total(), (f.budget)(N as u64));
    eprintln!(
        "{}: observing {N} cost {calls} calls (budget {budget})",
        f.kind
    );
    assert!(
        calls <= budget,
        "{}: observing {N} cost {calls} calls, budget {budget}: {:?}",
        f.kind,
        cx.calls.snapshot()
    );

    // They live in the stack's dependencies (a VPC, say), which destroy deletes.
    for (id, fi) in ids.iter().zip(&copies) {
        let gone = r.provider.delete_applied(&bcx, id, Some(fi)).await;
        gone.unwrap_or_else(|e| panic!("delete budget copy {id}: {e}"));
    }

    // (7) Destroy leaves neither the resource nor anything tagged for it.
    r.cli(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(
        !r.observed(&orphan).await,
        "{addr} ({orphan}) survived destroy"
    );
    assert!(
        !taggable || r.tagged().await.is_empty(),
        "{addr}: tagged copies survived destroy"
    );
}
