//! Unit tests of the pure planner: kinds from a small fake catalog, desired
//! stacks loaded from TOML text, state and the observed AWS view built by hand.

use super::fake::{FakeCatalog, GUARD};
use super::*;
use crate::model::{load, InputValues};
use crate::state::StateResource;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A VPC, a private subnet in it and a web security group, all referencing the VPC.
const BASE: &str = r#"
[stack]
name   = "net"
region = "us-east-1"
tags   = { Project = "demo" }

[output.vpc_id]
value = "${vpc.main.id}"

[vpc.main]
cidr_block           = "10.0.0.0/16"
enable_dns_hostnames = true

[subnet.a]
vpc_id            = "${vpc.main.id}"
cidr_block        = "10.0.1.0/24"
availability_zone = "us-east-1a"
tags              = { Tier = "private" }

[security_group.web]
name    = "web"
vpc_id  = "${vpc.main.id}"
ingress = [
  { protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" },
  { protocol = "tcp", from_port = 80, to_port = 80, cidr_block = "0.0.0.0/0" },
]
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: FakeCatalog,
    stack: Stack,
    graph: Graph,
}

fn fixture(toml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.toml");
    std::fs::write(&path, toml).unwrap();
    let catalog = FakeCatalog;
    let stack = load(&path, &catalog, &InputValues::default(), None)
        .unwrap_or_else(|d| panic!("stack does not load: {d:?}"));
    let graph = Graph::build(&stack).unwrap_or_else(|d| panic!("graph: {d:?}"));
    Fixture {
        _dir: dir,
        catalog,
        stack,
        graph,
    }
}

/// `BASE` with one piece of text replaced (the piece must be there).
fn base_with(from: &str, to: &str) -> Fixture {
    assert!(BASE.contains(from), "BASE has no `{from}`");
    fixture(&BASE.replacen(from, to, 1))
}

/// The observed world and state of an apply of `BASE` that went through.
struct World {
    state: State,
    observed: HashMap<String, Option<Observed>>,
    adoptions: Vec<Adoption>,
}

impl World {
    fn empty() -> World {
        World {
            state: State {
                format_version: crate::state::STATE_FORMAT_VERSION,
                stack: "net".into(),
                region: "us-east-1".into(),
                ..State::default()
            },
            observed: HashMap::new(),
            adoptions: vec![],
        }
    }

    /// Everything in `BASE` exists in AWS exactly as declared, and state says so.
    fn applied() -> World {
        let mut w = World::empty();
        w.state.lineage = Some("lineage-1".into());
        w.state.serial = 7;
        w.put(
            "vpc.main",
            "vpc",
            "vpc-1",
            vpc_fields("10.0.0.0/16"),
            &[],
            &[],
        );
        w.put(
            "subnet.a",
            "subnet",
            "subnet-1",
            subnet_fields("10.0.1.0/24", "us-east-1a"),
            &["vpc.main"],
            &[("Tier", "private")],
        );
        w.put(
            "security_group.web",
            "security_group",
            "sg-1",
            sg_fields("web", &[(443, "0.0.0.0/0"), (80, "0.0.0.0/0")]),
            &["vpc.main"],
            &[],
        );
        w
    }

    /// Records a resource in state (inputs = `fields`) and in AWS (same fields,
    /// the full desired tag set).
    fn put(
        &mut self,
        address: &str,
        kind: &str,
        id: &str,
        fields: Fields,
        deps: &[&str],
        own_tags: &[(&str, &str)],
    ) {
        // As apply records it: the resolved fields plus the tag set applied.
        let tags = live_tags(address, own_tags);
        let mut inputs = fields.clone();
        inputs.insert(
            "tags".into(),
            Value::Map(
                tags.iter()
                    .map(|(k, v)| (k.clone(), Value::str(v.clone())))
                    .collect(),
            ),
        );
        self.state.resources.insert(
            address.into(),
            state_resource(address, kind, id, inputs, deps),
        );
        self.observed
            .insert(address.into(), Some(observed(id, fields, tags)));
    }

    fn live_mut(&mut self, address: &str) -> &mut Observed {
        self.observed
            .get_mut(address)
            .and_then(Option::as_mut)
            .unwrap_or_else(|| panic!("{address} is not observed"))
    }

    fn plan(&self, fx: &Fixture) -> Result<Plan, Vec<PlanError>> {
        self.plan_with(fx, false, &[])
    }

    fn plan_with(
        &self,
        fx: &Fixture,
        destroy: bool,
        targets: &[&str],
    ) -> Result<Plan, Vec<PlanError>> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        compute(PlanInput {
            stack: &fx.stack,
            graph: &fx.graph,
            state: &self.state,
            observed: &self.observed,
            adoptions: self.adoptions.clone(),
            catalog: &fx.catalog,
            destroy,
            targets: &targets,
        })
    }
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn vpc_fields(cidr: &str) -> Fields {
    fields(&[
        ("cidr_block", Value::str(cidr)),
        ("enable_dns_support", Value::Bool(true)),
        ("enable_dns_hostnames", Value::Bool(true)),
        ("instance_tenancy", Value::str("default")),
    ])
}

fn subnet_fields(cidr: &str, az: &str) -> Fields {
    fields(&[
        ("vpc_id", Value::str("vpc-1")),
        ("cidr_block", Value::str(cidr)),
        ("availability_zone", Value::str(az)),
        ("map_public_ip_on_launch", Value::Bool(false)),
    ])
}

fn rule(port: i64, cidr: &str) -> Value {
    Value::Map(fields(&[
        ("protocol", Value::str("tcp")),
        ("from_port", Value::Int(port)),
        ("to_port", Value::Int(port)),
        ("cidr_block", Value::str(cidr)),
    ]))
}

fn sg_fields(name: &str, rules: &[(i64, &str)]) -> Fields {
    fields(&[
        ("name", Value::str(name)),
        ("description", Value::str("Managed by reconcile")),
        ("vpc_id", Value::str("vpc-1")),
        (
            "ingress",
            Value::List(rules.iter().map(|(p, c)| rule(*p, c)).collect()),
        ),
    ])
}

/// The tags AWS reports for a resource reconcile tagged: the stack's, the
/// resource's own, and the two `reconcile:*` tags.
fn live_tags(address: &str, own: &[(&str, &str)]) -> IndexMap<String, String> {
    let mut t = IndexMap::new();
    t.insert("Project".to_string(), "demo".to_string());
    for (k, v) in own {
        t.insert(k.to_string(), v.to_string());
    }
    t.insert("reconcile:stack".into(), "net".into());
    t.insert("reconcile:address".into(), address.into());
    t
}

fn observed(id: &str, fields: Fields, tags: IndexMap<String, String>) -> Observed {
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(id));
    attributes.insert(
        "arn".into(),
        Value::str(format!("arn:aws:ec2:us-east-1:123456789012:x/{id}")),
    );
    Observed {
        id: id.into(),
        fields,
        attributes,
        tags,
    }
}

fn state_resource(
    address: &str,
    kind: &str,
    id: &str,
    inputs: Fields,
    deps: &[&str],
) -> StateResource {
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(id));
    StateResource {
        address: address.into(),
        kind: kind.into(),
        id: id.into(),
        inputs,
        attributes,
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        protect: false,
    }
}

fn step<'p>(plan: &'p Plan, address: &str) -> &'p Step {
    let found: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.address == address && !s.deposed)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one step for {address}, plan has {:?}",
        summary(plan)
    );
    found[0]
}

fn summary(plan: &Plan) -> Vec<(String, Action)> {
    plan.steps
        .iter()
        .map(|s| (s.address.clone(), s.action))
        .collect()
}

fn addresses(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.address.as_str()).collect()
}

fn change<'s>(s: &'s Step, field: &str) -> &'s FieldChange {
    s.changes
        .iter()
        .find(|c| c.field == field)
        .unwrap_or_else(|| panic!("{} has no change to {field}: {:?}", s.address, s.changes))
}

fn changed_fields(s: &Step) -> Vec<&str> {
    s.changes.iter().map(|c| c.field.as_str()).collect()
}

fn errors(r: Result<Plan, Vec<PlanError>>) -> Vec<PlanError> {
    match r {
        Ok(p) => panic!("expected plan errors, got a plan: {:?}", summary(&p)),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// 1. Nothing exists yet
// ---------------------------------------------------------------------------

#[test]
fn empty_state_creates_everything_in_dependency_order() {
    let fx = fixture(BASE);
    let plan = World::empty().plan(&fx).unwrap();

    assert_eq!(
        addresses(&plan),
        ["vpc.main", "security_group.web", "subnet.a"],
        "dependencies first, then by name"
    );
    assert!(plan.steps.iter().all(|s| s.action == Action::Create));
    assert!(plan
        .steps
        .iter()
        .all(|s| s.id.is_none() && s.reason.is_none() && !s.drift));
    let c = plan.counts();
    assert_eq!(
        (c.create, c.update, c.replace, c.delete, c.unchanged),
        (3, 0, 0, 0, 0)
    );
    assert!(plan.has_changes());

    // The VPC's values are all known, schema defaults included.
    let vpc = step(&plan, "vpc.main");
    let planned = vpc.planned.as_ref().unwrap();
    assert_eq!(planned["cidr_block"], Value::str("10.0.0.0/16"));
    assert_eq!(planned["enable_dns_hostnames"], Value::Bool(true));
    assert_eq!(planned["enable_dns_support"], Value::Bool(true));
    assert_eq!(planned["instance_tenancy"], Value::str("default"));
    assert!(vpc.dependencies.is_empty());

    // The subnet's VPC id exists only after the VPC is created.
    let subnet = step(&plan, "subnet.a");
    assert_eq!(subnet.dependencies, ["vpc.main"]);
    let planned = subnet.planned.as_ref().unwrap();
    assert_eq!(planned["vpc_id"], Value::Unknown);
    assert_eq!(planned["vpc_id"].to_string(), "(known after apply)");
    assert_eq!(planned["cidr_block"], Value::str("10.0.1.0/24"));
    assert_eq!(planned["map_public_ip_on_launch"], Value::Bool(false));
    // `desired` keeps the reference as written, for apply to resolve again.
    assert_eq!(
        subnet.desired.as_ref().unwrap()["vpc_id"],
        Value::str("${vpc.main.id}")
    );
    // A create lists every planned field as a change from nothing.
    let vpc_id = change(subnet, "vpc_id");
    assert_eq!(vpc_id.old, None);
    assert_eq!(vpc_id.new, Some(Value::Unknown));
    assert_eq!(subnet.changes.len(), planned.len());

    // Full tag set: stack tags, own tags, reconcile's.
    assert_eq!(subnet.tags, live_tags("subnet.a", &[("Tier", "private")]));
    assert_eq!(
        step(&plan, "security_group.web").tags,
        live_tags("security_group.web", &[])
    );

    assert!(plan.observed.is_empty());
    assert_eq!(plan.stack, "net");
    assert_eq!(plan.region, "us-east-1");
    assert_eq!(plan.format_version, PLAN_FORMAT_VERSION);
    assert!(!plan.destroy);
    assert_eq!(plan.outputs["vpc_id"], Value::str("${vpc.main.id}"));
}

#[test]
fn a_create_referencing_a_declared_field_of_a_create_sees_its_value() {
    // A declared field of a resource being created is known now; its id is not.
    let fx = fixture(&format!(
        "{BASE}\n[security_group.copy]\nname = \"copy\"\nvpc_id = \"${{vpc.main.id}}\"\ndescription = \"of ${{vpc.main.cidr_block}}\"\n"
    ));
    let plan = World::empty().plan(&fx).unwrap();
    let copy = step(&plan, "security_group.copy");
    let planned = copy.planned.as_ref().unwrap();
    assert_eq!(planned["description"], Value::str("of 10.0.0.0/16"));
    assert_eq!(planned["vpc_id"], Value::Unknown);
}

// ---------------------------------------------------------------------------
// 2. Nothing to do
// ---------------------------------------------------------------------------

#[test]
fn state_and_aws_equal_to_desired_is_all_no_op() {
    let fx = fixture(BASE);
    let w = World::applied();
    let plan = w.plan(&fx).unwrap();

    assert_eq!(
        addresses(&plan),
        ["vpc.main", "security_group.web", "subnet.a"]
    );
    for s in &plan.steps {
        assert_eq!(s.action, Action::NoOp, "{}: {:?}", s.address, s.changes);
        assert!(s.changes.is_empty());
        assert!(!s.drift);
        assert!(s.reason.is_none());
    }
    assert!(!plan.has_changes());
    assert_eq!(plan.counts().unchanged, 3);

    // Existing resources carry their AWS ids; references resolve to live attributes.
    assert_eq!(step(&plan, "vpc.main").id.as_deref(), Some("vpc-1"));
    assert_eq!(step(&plan, "subnet.a").id.as_deref(), Some("subnet-1"));
    assert_eq!(
        step(&plan, "subnet.a").planned.as_ref().unwrap()["vpc_id"],
        Value::str("vpc-1")
    );
    // The plan carries what it was made against.
    assert_eq!(plan.state_lineage.as_deref(), Some("lineage-1"));
    assert_eq!(plan.state_serial, 7);
    assert_eq!(plan.observed.len(), 3);
    assert_eq!(plan.observed["subnet.a"].id, "subnet-1");
}

#[test]
fn rule_order_and_aws_tags_do_not_make_a_change() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    // AWS reports the rules in another order and adds its own `aws:` tags.
    w.live_mut("security_group.web").fields =
        sg_fields("web", &[(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]);
    w.live_mut("subnet.a")
        .tags
        .insert("aws:cloudformation:stack-name".into(), "x".into());
    // Fields the stack does not declare are not managed.
    w.live_mut("subnet.a")
        .fields
        .insert("ipv6_native".into(), Value::Bool(false));
    let plan = w.plan(&fx).unwrap();
    assert!(!plan.has_changes(), "{:?}", summary(&plan));
}

// ---------------------------------------------------------------------------
// 3. Drift versus config changes
// ---------------------------------------------------------------------------

#[test]
fn a_field_changed_outside_reconcile_is_drift() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.live_mut("subnet.a")
        .fields
        .insert("map_public_ip_on_launch".into(), Value::Bool(true));
    let plan = w.plan(&fx).unwrap();

    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert!(s.drift);
    assert!(
        s.reason.as_deref().unwrap().contains("drift"),
        "{:?}",
        s.reason
    );
    assert_eq!(changed_fields(s), ["map_public_ip_on_launch"]);
    let c = &s.changes[0];
    assert_eq!(c.old, Some(Value::Bool(true)));
    assert_eq!(c.new, Some(Value::Bool(false)));
    assert!(!c.forces_replace);
    assert_eq!(s.id.as_deref(), Some("subnet-1"));
    assert_eq!(step(&plan, "vpc.main").action, Action::NoOp);
    assert_eq!(plan.counts().update, 1);
    assert!(plan.has_changes());
    // Updates need the live view at apply time.
    assert!(plan.observed["subnet.a"].fields["map_public_ip_on_launch"]
        .as_bool()
        .unwrap());
}

#[test]
fn a_field_changed_in_the_stack_is_a_config_update_not_drift() {
    let fx = base_with(
        "enable_dns_hostnames = true",
        "enable_dns_hostnames = false",
    );
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "vpc.main");
    assert_eq!(s.action, Action::Update);
    assert!(!s.drift);
    assert!(s.reason.is_none(), "{:?}", s.reason);
    let c = change(s, "enable_dns_hostnames");
    assert_eq!(c.old, Some(Value::Bool(true)));
    assert_eq!(c.new, Some(Value::Bool(false)));
    assert_eq!(s.changes.len(), 1);
    // An in-place update of the VPC keeps its id: dependents are untouched.
    assert_eq!(step(&plan, "subnet.a").action, Action::NoOp);
    assert_eq!(step(&plan, "security_group.web").action, Action::NoOp);
}

#[test]
fn drift_mixed_with_a_config_change_is_not_reported_as_drift() {
    let fx = base_with(
        "enable_dns_hostnames = true",
        "enable_dns_hostnames = false",
    );
    let mut w = World::applied();
    w.live_mut("vpc.main")
        .fields
        .insert("enable_dns_support".into(), Value::Bool(false));
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "vpc.main");
    assert_eq!(s.action, Action::Update);
    assert!(!s.drift);
    assert_eq!(
        changed_fields(s),
        ["enable_dns_hostnames", "enable_dns_support"]
    );
}

#[test]
fn a_rule_added_outside_reconcile_is_drift_on_ingress() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.live_mut("security_group.web").fields = sg_fields(
        "web",
        &[(443, "0.0.0.0/0"), (80, "0.0.0.0/0"), (22, "0.0.0.0/0")],
    );
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "security_group.web");
    assert_eq!(s.action, Action::Update);
    assert!(s.drift);
    assert_eq!(changed_fields(s), ["ingress"]);
    assert!(!s.changes[0].forces_replace);
    assert_eq!(
        s.changes[0].old.as_ref().unwrap().as_list().unwrap().len(),
        3
    );
    assert_eq!(
        s.changes[0].new.as_ref().unwrap().as_list().unwrap().len(),
        2
    );
}

#[test]
fn a_tag_edited_in_the_toml_is_a_change_not_drift() {
    let fx = fixture(&BASE.replace("Tier = \"private\"", "Tier = \"restricted\""));
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert!(
        !s.drift,
        "the desired tags changed, not AWS: {:?}",
        s.reason
    );
    assert_eq!(changed_fields(s), ["tags"]);
}

#[test]
fn tags_changed_outside_reconcile_are_drift() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    let live = w.live_mut("subnet.a");
    live.tags.shift_remove("Tier");
    live.tags.insert("Owner".into(), "someone".into());
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert!(s.drift);
    assert_eq!(changed_fields(s), ["tags"]);
    let new = s.changes[0].new.as_ref().unwrap().as_map().unwrap();
    assert_eq!(new["Tier"], Value::str("private"));
    assert_eq!(new["reconcile:address"], Value::str("subnet.a"));
    assert!(!new.contains_key("Owner"));
}

#[test]
fn missing_reconcile_tags_are_a_change() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.live_mut("vpc.main").tags.shift_remove(TAG_ADDRESS);
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "vpc.main");
    assert_eq!(s.action, Action::Update);
    assert_eq!(changed_fields(s), ["tags"]);
}

// ---------------------------------------------------------------------------
// 4. Replacements
// ---------------------------------------------------------------------------

#[test]
fn a_force_new_cidr_change_replaces_creating_first() {
    let fx = base_with(r#""10.0.1.0/24""#, r#""10.0.2.0/24""#);
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Replace);
    assert!(
        s.create_before_destroy,
        "non-overlapping ranges can coexist"
    );
    assert!(!s.drift);
    assert_eq!(s.id.as_deref(), Some("subnet-1"));
    let c = change(s, "cidr_block");
    assert!(c.forces_replace);
    assert_eq!(c.old, Some(Value::str("10.0.1.0/24")));
    assert_eq!(c.new, Some(Value::str("10.0.2.0/24")));
    assert_eq!(s.changes.len(), 1);
    assert_eq!(plan.counts().replace, 1);
}

#[test]
fn an_overlapping_cidr_change_replaces_deleting_first() {
    let fx = base_with(r#""10.0.1.0/24""#, r#""10.0.1.0/25""#);
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Replace);
    assert!(!s.create_before_destroy);
}

#[test]
fn an_availability_zone_change_replaces_deleting_first() {
    let fx = base_with(r#""us-east-1a""#, r#""us-east-1b""#);
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Replace);
    assert_eq!(changed_fields(s), ["availability_zone"]);
    assert!(change(s, "availability_zone").forces_replace);
    assert!(
        !s.create_before_destroy,
        "the same range cannot exist twice in a VPC"
    );
}

#[test]
fn a_replaced_dependent_of_a_delete_first_replacement_also_deletes_first() {
    // subnet.b depends on subnet.a; subnet.a moves AZ (delete first), and
    // subnet.b moves to a disjoint range (would on its own create first).
    let toml = format!(
        "{}\n[subnet.b]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.9.0/24\"\navailability_zone = \"us-east-1a\"\ndepends_on = [\"subnet.a\"]\n",
        BASE.replacen(r#""us-east-1a""#, r#""us-east-1b""#, 1)
    );
    let fx = fixture(&toml);
    let mut w = World::applied();
    w.put(
        "subnet.b",
        "subnet",
        "subnet-2",
        subnet_fields("10.0.5.0/24", "us-east-1a"),
        &["vpc.main", "subnet.a"],
        &[],
    );
    let plan = w.plan(&fx).unwrap();
    let a = step(&plan, "subnet.a");
    let b = step(&plan, "subnet.b");
    assert_eq!(a.action, Action::Replace);
    assert!(!a.create_before_destroy);
    assert_eq!(b.action, Action::Replace);
    assert_eq!(b.dependencies, ["subnet.a", "vpc.main"]);
    assert_eq!(changed_fields(b), ["cidr_block"]);
    assert!(
        !b.create_before_destroy,
        "forced to delete first: its old copy must go before subnet.a's does"
    );
    let order = addresses(&plan);
    let pos = |a: &str| order.iter().position(|x| *x == a).unwrap();
    assert!(pos("subnet.a") < pos("subnet.b"));

    // Control: with subnet.a unchanged, the same change to subnet.b creates first.
    let fx = fixture(&toml.replacen(r#""us-east-1b""#, r#""us-east-1a""#, 1));
    let plan = w.plan(&fx).unwrap();
    assert_eq!(step(&plan, "subnet.a").action, Action::NoOp);
    let b = step(&plan, "subnet.b");
    assert_eq!(b.action, Action::Replace);
    assert!(b.create_before_destroy);
}

#[test]
fn replacing_a_vpc_replaces_what_references_its_id() {
    let fx = base_with(r#""10.0.0.0/16""#, r#""10.1.0.0/16""#);
    let plan = World::applied().plan(&fx).unwrap();
    let vpc = step(&plan, "vpc.main");
    assert_eq!(vpc.action, Action::Replace);
    assert!(change(vpc, "cidr_block").forces_replace);

    let subnet = step(&plan, "subnet.a");
    assert_eq!(subnet.action, Action::Replace);
    assert_eq!(subnet.planned.as_ref().unwrap()["vpc_id"], Value::Unknown);
    let c = change(subnet, "vpc_id");
    assert_eq!(c.old, Some(Value::str("vpc-1")));
    assert_eq!(c.new, Some(Value::Unknown));
    assert!(c.forces_replace);
    assert!(!subnet.drift, "a new VPC id is not drift");

    let sg = step(&plan, "security_group.web");
    assert_eq!(sg.action, Action::Replace);
    assert!(
        sg.create_before_destroy,
        "a group in another VPC can coexist"
    );
    assert_eq!(plan.counts().replace, 3);
}

// ---------------------------------------------------------------------------
// 5. Deleted outside reconcile
// ---------------------------------------------------------------------------

#[test]
fn a_resource_in_state_but_gone_from_aws_is_created_again() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.observed.insert("subnet.a".into(), None);
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Create);
    assert_eq!(s.reason.as_deref(), Some("deleted outside reconcile"));
    assert!(s.drift);
    assert_eq!(s.id, None);
    // The VPC still exists, so its id is known now.
    assert_eq!(s.planned.as_ref().unwrap()["vpc_id"], Value::str("vpc-1"));
    assert_eq!(step(&plan, "vpc.main").action, Action::NoOp);
    assert!(!plan.observed.contains_key("subnet.a"));
    // Not a delete as well: it is still declared.
    assert_eq!(plan.counts().delete, 0);
}

// ---------------------------------------------------------------------------
// 6. No longer declared
// ---------------------------------------------------------------------------

#[test]
fn a_resource_no_longer_declared_is_deleted() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.old");
    assert_eq!(s.action, Action::Delete);
    assert_eq!(s.kind, "subnet");
    assert_eq!(s.id.as_deref(), Some("subnet-9"));
    assert_eq!(s.reason.as_deref(), Some("no longer declared"));
    assert_eq!(s.dependencies, ["vpc.main"]);
    assert!(!s.already_gone);
    assert!(!s.deposed);
    assert!(s.desired.is_none() && s.planned.is_none());
    assert_eq!(plan.counts().delete, 1);
    assert_eq!(plan.counts().unchanged, 3);
    // Deletes follow the declared resources' steps.
    assert_eq!(plan.steps.last().unwrap().address, "subnet.old");
}

#[test]
fn an_undeclared_resource_already_gone_only_drops_its_state_entry() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.observed.insert("subnet.old".into(), None);
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.old");
    assert_eq!(s.action, Action::Delete);
    assert!(s.already_gone);
    assert!(s.reason.as_deref().unwrap().contains("already deleted"));
}

#[test]
fn a_protected_resource_already_gone_from_aws_only_leaves_state() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.state.resources["subnet.old"].protect = true;
    w.observed.insert("subnet.old".into(), None);
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.old");
    assert_eq!(s.action, Action::Delete);
    assert!(s.already_gone, "nothing is deleted in AWS");
}

#[test]
fn a_delete_carries_its_kind_s_note_from_the_applied_inputs() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    let mut f = subnet_fields("10.0.9.0/24", "us-east-1c");
    f.insert("map_public_ip_on_launch".into(), Value::Bool(true));
    w.put("subnet.old", "subnet", "subnet-9", f, &["vpc.main"], &[]);
    let plan = w.plan(&fx).unwrap();
    let step = plan
        .steps
        .iter()
        .find(|s| s.address == "subnet.old")
        .unwrap();
    assert_eq!(step.action, Action::Delete);
    assert_eq!(
        step.reason.as_deref(),
        Some("no longer declared; takes effect after a wait")
    );
}

/// `BASE` with a second group whose rule names `source` as its source.
fn with_user_of_web(source: &str) -> String {
    format!(
        "{BASE}\n[security_group.app]\nname = \"app\"\nvpc_id = \"${{vpc.main.id}}\"\ningress = [{{ protocol = \"tcp\", from_port = 8080, to_port = 8080, source_security_group_id = \"{source}\" }}]\n"
    )
}

#[test]
fn a_replacement_of_a_resource_others_still_use_is_refused_naming_them() {
    let fx = fixture(&with_user_of_web("${security_group.web.id}").replacen(
        "name    = \"web\"",
        "name    = \"web2\"",
        1,
    ));
    let errs = errors(World::applied().plan(&fx));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "security_group.web");
    let m = &errs[0].message;
    assert!(m.contains("name would force its replacement"), "{m}");
    assert!(m.contains("security_group.app still use it"), "{m}");
    assert!(m.contains("their rules would lose their source"), "{m}");
}

#[test]
fn a_resource_others_name_by_its_literal_id_is_not_deleted() {
    let start = BASE.find("[security_group.web]").unwrap();
    let without_web = &BASE[..start];
    let text = with_user_of_web("sg-1").replacen(&BASE[start..], "", 1);
    assert!(text.starts_with(without_web));
    let fx = fixture(&text);
    let errs = errors(World::applied().plan(&fx));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].message.contains("no longer declared")
            && errs[0].message.contains("security_group.app"),
        "{}",
        errs[0].message
    );
    // Destroying everything takes the users with it: nothing to refuse.
    let fx = fixture(&with_user_of_web("${security_group.web.id}"));
    assert!(World::applied().plan_with(&fx, true, &[]).is_ok());
}

#[test]
fn a_protected_resource_no_longer_declared_is_an_error() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.state.resources["subnet.old"].protect = true;
    let errs = errors(w.plan(&fx));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].address, "subnet.old");
    assert!(errs[0].message.contains("protect"), "{}", errs[0].message);
    assert!(
        errs[0].message.contains("no longer declared"),
        "{}",
        errs[0].message
    );
    assert!(errs[0].to_string().starts_with("subnet.old: "));
}

// ---------------------------------------------------------------------------
// 7. Protected replacements
// ---------------------------------------------------------------------------

#[test]
fn a_protected_resource_that_would_be_replaced_is_an_error_naming_the_field() {
    let fx = base_with(
        r#"cidr_block        = "10.0.1.0/24""#,
        "cidr_block        = \"10.0.2.0/24\"\nprotect           = true",
    );
    assert!(fx.stack.resources["subnet.a"].protect);
    let errs = errors(World::applied().plan(&fx));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "subnet.a");
    assert!(
        errs[0].message.contains("cidr_block"),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.contains("protect"), "{}", errs[0].message);
}

#[test]
fn a_protected_resource_may_still_be_updated_in_place() {
    let fx = base_with(
        r#"cidr_block        = "10.0.1.0/24""#,
        "cidr_block        = \"10.0.1.0/24\"\nprotect           = true\nmap_public_ip_on_launch = true",
    );
    let plan = World::applied().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert!(s.protect);
    assert_eq!(changed_fields(s), ["map_public_ip_on_launch"]);
}

#[test]
fn every_blocked_resource_is_reported_at_once() {
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.state.resources["subnet.old"].protect = true;
    let fx = base_with(
        r#"enable_dns_hostnames = true"#,
        "enable_dns_hostnames = true\ninstance_tenancy = \"dedicated\"\nprotect = true",
    );
    let errs = errors(w.plan(&fx));
    let mut named: Vec<&str> = errs.iter().map(|e| e.address.as_str()).collect();
    named.sort();
    assert_eq!(named, ["subnet.old", "vpc.main"]);
    let vpc = errs.iter().find(|e| e.address == "vpc.main").unwrap();
    assert!(vpc.message.contains("instance_tenancy"), "{}", vpc.message);
}

// ---------------------------------------------------------------------------
// 8. Destroy
// ---------------------------------------------------------------------------

#[test]
fn destroy_deletes_everything_in_state() {
    let fx = fixture(BASE);
    let w = World::applied();
    let plan = w.plan_with(&fx, true, &[]).unwrap();
    assert!(plan.destroy);
    assert_eq!(plan.steps.len(), 3);
    assert!(plan.steps.iter().all(|s| s.action == Action::Delete));
    assert!(plan
        .steps
        .iter()
        .all(|s| s.reason.as_deref() == Some("destroy")));
    let mut got: Vec<(&str, Option<&str>)> = plan
        .steps
        .iter()
        .map(|s| (s.address.as_str(), s.id.as_deref()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("security_group.web", Some("sg-1")),
            ("subnet.a", Some("subnet-1")),
            ("vpc.main", Some("vpc-1")),
        ]
    );
    // Dependencies come from state, for apply to delete in reverse order.
    assert_eq!(step(&plan, "subnet.a").dependencies, ["vpc.main"]);
    assert_eq!(plan.counts().delete, 3);
}

#[test]
fn destroy_with_empty_state_plans_nothing() {
    let fx = fixture(BASE);
    let plan = World::empty().plan_with(&fx, true, &[]).unwrap();
    assert!(plan.steps.is_empty());
    assert!(!plan.has_changes());
}

#[test]
fn destroy_of_a_resource_protected_in_the_stack_is_an_error() {
    let fx = base_with(
        "enable_dns_hostnames = true",
        "enable_dns_hostnames = true\nprotect = true",
    );
    let errs = errors(World::applied().plan_with(&fx, true, &[]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "vpc.main");
    assert!(errs[0].message.contains("destroy"), "{}", errs[0].message);
}

#[test]
fn destroy_of_a_resource_protected_in_state_is_an_error() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.state.resources["security_group.web"].protect = true;
    let errs = errors(w.plan_with(&fx, true, &[]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "security_group.web");
}

// ---------------------------------------------------------------------------
// 9. ignore_changes
// ---------------------------------------------------------------------------

#[test]
fn ignore_changes_suppresses_that_fields_diff() {
    let fx = base_with(
        r#"tags              = { Tier = "private" }"#,
        "tags              = { Tier = \"private\" }\nignore_changes    = [\"map_public_ip_on_launch\"]",
    );
    let mut w = World::applied();
    w.live_mut("subnet.a")
        .fields
        .insert("map_public_ip_on_launch".into(), Value::Bool(true));
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::NoOp, "{:?}", s.changes);
    assert!(s.changes.is_empty());
    assert_eq!(s.ignore_changes, ["map_public_ip_on_launch"]);
    assert!(!plan.has_changes());

    // Other fields are still compared.
    w.live_mut("subnet.a")
        .tags
        .insert("Tier".into(), "public".into());
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert_eq!(changed_fields(s), ["tags"]);
}

#[test]
fn ignore_changes_on_tags_suppresses_the_tag_diff() {
    let fx = base_with(
        r#"tags              = { Tier = "private" }"#,
        "tags              = { Tier = \"private\" }\nignore_changes    = [\"tags\"]",
    );
    let mut w = World::applied();
    w.live_mut("subnet.a").tags.clear();
    let plan = w.plan(&fx).unwrap();
    assert_eq!(step(&plan, "subnet.a").action, Action::NoOp);
}

// ---------------------------------------------------------------------------
// 10. Adoption
// ---------------------------------------------------------------------------

/// State knows the VPC; the subnet's create went through but was never recorded.
fn interrupted_world() -> World {
    let mut w = World::applied();
    w.state.resources.shift_remove("subnet.a");
    let obs = w.observed.remove("subnet.a").unwrap().unwrap();
    w.adoptions.push(Adoption {
        address: "subnet.a".into(),
        kind: "subnet".into(),
        observed: obs,
    });
    w
}

#[test]
fn an_adopted_resource_equal_to_desired_is_a_no_op_not_a_create() {
    let fx = fixture(BASE);
    let w = interrupted_world();
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::NoOp, "{:?}", s.changes);
    assert_eq!(s.id.as_deref(), Some("subnet-1"));
    let reason = s.reason.as_deref().unwrap();
    assert!(reason.contains("adopting"), "{reason}");
    assert!(reason.contains("subnet-1"), "{reason}");
    assert!(!s.drift);
    assert_eq!(plan.counts().create, 0);
    // Adopting is itself a change to state.
    assert!(plan.has_changes());
    assert_eq!(plan.adoptions.len(), 1);
    assert_eq!(plan.observed["subnet.a"].id, "subnet-1");
}

#[test]
fn an_adopted_resource_that_differs_is_updated_not_drift() {
    let fx = fixture(BASE);
    let mut w = interrupted_world();
    w.adoptions[0]
        .observed
        .fields
        .insert("map_public_ip_on_launch".into(), Value::Bool(true));
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert_eq!(changed_fields(s), ["map_public_ip_on_launch"]);
    assert!(!s.drift);
    assert!(s.reason.as_deref().unwrap().contains("adopting"));
}

#[test]
fn an_adopted_resource_no_longer_declared_is_deleted() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.adoptions.push(Adoption {
        address: "subnet.gone".into(),
        kind: "subnet".into(),
        observed: observed(
            "subnet-7",
            subnet_fields("10.0.7.0/24", "us-east-1a"),
            live_tags("subnet.gone", &[]),
        ),
    });
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.gone");
    assert_eq!(s.action, Action::Delete);
    assert_eq!(s.id.as_deref(), Some("subnet-7"));
    assert!(s.reason.as_deref().unwrap().contains("interrupted apply"));
}

// ---------------------------------------------------------------------------
// 11. --target
// ---------------------------------------------------------------------------

#[test]
fn target_limits_steps_to_it_and_its_dependencies() {
    let fx = fixture(BASE);
    let plan = World::empty().plan_with(&fx, false, &["subnet.a"]).unwrap();
    assert_eq!(addresses(&plan), ["vpc.main", "subnet.a"]);
    assert!(plan.steps.iter().all(|s| s.action == Action::Create));

    let plan = World::empty().plan_with(&fx, false, &["vpc.main"]).unwrap();
    assert_eq!(
        addresses(&plan),
        ["vpc.main"],
        "dependents are not included"
    );
}

#[test]
fn target_leaves_other_deletes_and_changes_out() {
    let fx = base_with(r#""us-east-1a""#, r#""us-east-1b""#);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.live_mut("security_group.web").fields = sg_fields("web", &[(22, "0.0.0.0/0")]);

    let plan = w.plan_with(&fx, false, &["security_group.web"]).unwrap();
    assert_eq!(
        summary(&plan),
        [
            ("vpc.main".to_string(), Action::NoOp),
            ("security_group.web".to_string(), Action::Update),
        ]
    );

    // Targeting an undeclared address in state plans its delete alone.
    let plan = w.plan_with(&fx, false, &["subnet.old"]).unwrap();
    assert_eq!(
        summary(&plan),
        [
            ("vpc.main".to_string(), Action::NoOp),
            ("subnet.old".to_string(), Action::Delete),
        ]
    );
}

#[test]
fn target_leaves_deposed_copies_and_leftovers_of_other_addresses_alone() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.state.deposed.push(state_resource(
        "security_group.web",
        "security_group",
        "sg-old",
        sg_fields("web", &[]),
        &["vpc.main"],
    ));
    w.state.deposed.push(state_resource(
        "subnet.a",
        "subnet",
        "subnet-old",
        subnet_fields("10.0.1.0/24", "us-east-1b"),
        &["vpc.main"],
    ));
    w.adoptions.push(Adoption {
        address: "subnet.gone".into(),
        kind: "subnet".into(),
        observed: observed(
            "subnet-7",
            subnet_fields("10.0.7.0/24", "us-east-1a"),
            live_tags("subnet.gone", &[]),
        ),
    });
    let plan = w.plan_with(&fx, false, &["subnet.a"]).unwrap();
    let deletes: Vec<(&str, Option<&str>)> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Delete)
        .map(|s| (s.address.as_str(), s.id.as_deref()))
        .collect();
    assert_eq!(
        deletes,
        [("subnet.a", Some("subnet-old"))],
        "only the target's own deposed copy: {:?}",
        summary(&plan)
    );
    // Untargeted, all of them go.
    let plan = w.plan(&fx).unwrap();
    assert_eq!(plan.counts().delete, 3);
}

// ---------------------------------------------------------------------------
// 12. Deposed copies
// ---------------------------------------------------------------------------

#[test]
fn a_deposed_copy_is_deleted() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.state.deposed.push(state_resource(
        "subnet.a",
        "subnet",
        "subnet-old",
        subnet_fields("10.0.1.0/24", "us-east-1b"),
        &["vpc.main"],
    ));
    let plan = w.plan(&fx).unwrap();
    let deposed: Vec<&Step> = plan.steps.iter().filter(|s| s.deposed).collect();
    assert_eq!(deposed.len(), 1);
    let d = deposed[0];
    assert_eq!(d.address, "subnet.a");
    assert_eq!(d.action, Action::Delete);
    assert_eq!(d.id.as_deref(), Some("subnet-old"));
    assert_eq!(d.dependencies, ["vpc.main"]);
    assert!(d.reason.as_deref().unwrap().contains("subnet-old"));
    // The current subnet is untouched.
    let current = step(&plan, "subnet.a");
    assert_eq!(current.action, Action::NoOp);
    assert_eq!(current.id.as_deref(), Some("subnet-1"));
    assert_eq!(plan.counts().delete, 1);
    assert!(plan.has_changes());
}

// ---------------------------------------------------------------------------
// Helpers of the module
// ---------------------------------------------------------------------------

#[test]
fn desired_tags_merge_stack_resource_and_reconcile_tags() {
    let fx = base_with(
        r#"Tier = "private""#,
        r#"Tier = "private", Project = "own""#,
    );
    let t = desired_tags(&fx.stack, "subnet.a");
    assert_eq!(
        t["Project"], "own",
        "a resource's tag wins over the stack's"
    );
    assert_eq!(t["Tier"], "private");
    assert_eq!(t[TAG_STACK], "net");
    assert_eq!(t[TAG_ADDRESS], "subnet.a");
    assert_eq!(t.len(), 4);
}

#[test]
fn a_live_deletion_guard_refuses_a_delete_and_a_destroy() {
    let fx = fixture(BASE);
    let mut w = World::applied();
    w.put(
        "subnet.old",
        "subnet",
        "subnet-9",
        subnet_fields("10.0.9.0/24", "us-east-1c"),
        &["vpc.main"],
        &[],
    );
    w.live_mut("subnet.old")
        .fields
        .insert(GUARD.into(), Value::Bool(true));
    let errs = errors(w.plan(&fx));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "subnet.old");
    assert!(errs[0].message.contains(&format!("has {GUARD} on in AWS")));
    assert!(errs[0]
        .message
        .contains(&format!("never switches {GUARD} off")));

    let errs = errors(w.plan_with(&fx, true, &[]));
    assert!(errs
        .iter()
        .any(|e| e.address == "subnet.old" && e.message.contains("destroy")));

    // Switched off (the deliberate way): the delete goes ahead.
    w.live_mut("subnet.old")
        .fields
        .insert(GUARD.into(), Value::Bool(false));
    assert_eq!(
        step(&w.plan(&fx).unwrap(), "subnet.old").action,
        Action::Delete
    );
}

#[test]
fn a_live_deletion_guard_refuses_a_replacement_naming_the_field() {
    let fx = base_with(r#""10.0.1.0/24""#, r#""10.0.2.0/24""#);
    let mut w = World::applied();
    w.live_mut("subnet.a")
        .fields
        .insert(GUARD.into(), Value::Bool(true));
    let errs = errors(w.plan(&fx));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].address, "subnet.a");
    assert!(errs[0]
        .message
        .contains("cidr_block would force its replacement"));
}

// ---------------------------------------------------------------------------
// Fields another resource takes over
// ---------------------------------------------------------------------------

/// `BASE` plus an autopilot that takes over the subnet's public IP setting.
fn with_autopilot() -> Fixture {
    fixture(&format!(
        "{BASE}\n[autopilot.a]\nsubnet_id = \"${{subnet.a.id}}\"\n"
    ))
}

/// `World::applied` with the autopilot applied too, and the subnet's public IP
/// setting moved by it.
fn autopilot_applied() -> World {
    let mut w = World::applied();
    w.state.resources.insert(
        "autopilot.a".into(),
        state_resource(
            "autopilot.a",
            "autopilot",
            "ap-1",
            fields(&[("subnet_id", Value::str("subnet-1"))]),
            &["subnet.a"],
        ),
    );
    w.observed.insert(
        "autopilot.a".into(),
        Some(observed(
            "ap-1",
            fields(&[("subnet_id", Value::str("subnet-1"))]),
            IndexMap::new(),
        )),
    );
    w.live_mut("subnet.a")
        .fields
        .insert("map_public_ip_on_launch".into(), Value::Bool(true));
    w
}

#[test]
fn a_field_another_resource_took_over_is_not_compared_and_the_plan_says_so() {
    let fx = with_autopilot();
    let plan = autopilot_applied().plan(&fx).unwrap();
    assert!(!plan.has_changes(), "{:?}", summary(&plan));
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::NoOp);
    assert_eq!(
        s.notes,
        ["map_public_ip_on_launch is managed by autopilot.a: not compared with AWS"]
    );
    // Apply diffs again before an update; the step carries the field to leave alone.
    assert!(s
        .ignore_changes
        .contains(&"map_public_ip_on_launch".to_string()));
    assert!(step(&plan, "autopilot.a").notes.is_empty());
}

#[test]
fn other_fields_of_a_taken_over_resource_are_still_compared() {
    let fx = with_autopilot();
    let mut w = autopilot_applied();
    w.live_mut("subnet.a")
        .tags
        .insert("Tier".into(), "public".into());
    let plan = w.plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert!(s.drift);
    assert_eq!(changed_fields(s), ["tags"]);
}

#[test]
fn a_taken_over_field_is_still_set_when_the_resource_is_created() {
    let fx = with_autopilot();
    let plan = World::empty().plan(&fx).unwrap();
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Create);
    // Taken over after creation only: the create still sets the declared value.
    assert_eq!(
        change(s, "map_public_ip_on_launch").new,
        Some(Value::Bool(false))
    );
    assert_eq!(
        s.notes,
        ["map_public_ip_on_launch is set at creation, then managed by autopilot.a"]
    );
}

#[test]
fn removing_the_owner_makes_the_field_managed_again_and_the_plan_says_so() {
    // The autopilot is gone from the stack; state still holds it.
    let fx = fixture(BASE);
    let plan = autopilot_applied().plan(&fx).unwrap();
    assert_eq!(step(&plan, "autopilot.a").action, Action::Delete);
    let s = step(&plan, "subnet.a");
    assert_eq!(s.action, Action::Update);
    assert_eq!(changed_fields(s), ["map_public_ip_on_launch"]);
    assert_eq!(
        s.notes,
        ["map_public_ip_on_launch is managed again: autopilot.a, which managed it, is no longer declared"]
    );
    assert!(!s
        .ignore_changes
        .contains(&"map_public_ip_on_launch".to_string()));
}

#[test]
fn destroy_asks_no_owner() {
    let fx = with_autopilot();
    let plan = autopilot_applied().plan_with(&fx, true, &[]).unwrap();
    assert!(plan.steps.iter().all(|s| s.notes.is_empty()));
}
