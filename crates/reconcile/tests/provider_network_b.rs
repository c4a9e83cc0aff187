//! The route_table, security_group and security_group_rule providers, called
//! directly through the library against a private moto server: create, observe
//! with no diff, out-of-band drift seen and repaired by update, delete, and what
//! observing costs in AWS calls.

mod common;

use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
use indexmap::IndexMap;
use reconcile_aws::ec2::route_table::RouteTable;
use reconcile_aws::ec2::security_group::SecurityGroup;
use reconcile_aws::ec2::security_group_rule::SecurityGroupRule;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, ProviderError};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};

const ACCOUNT: &str = "123456789012";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, "test-stack", CallCounter::default()).await
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::str(*s)).collect())
}

fn tags(cx: &Cx, address: &str) -> IndexMap<String, String> {
    let mut t = IndexMap::new();
    t.insert("Project".to_string(), "network-b".to_string());
    t.insert("reconcile:stack".into(), cx.stack.clone());
    t.insert("reconcile:address".into(), address.into());
    t
}

/// A route table entry as the user writes it.
fn route(destination: &str, target_key: &str, target: &str) -> Value {
    Value::Map(fields(&[
        ("destination_cidr_block", Value::str(destination)),
        (target_key, Value::str(target)),
    ]))
}

/// A security group rule as the user writes it; `source` is a CIDR or a group id.
fn rule(protocol: &str, from: i64, to: i64, source: &str, description: Option<&str>) -> Value {
    let key = if source.starts_with("sg-") {
        "source_security_group_id"
    } else {
        "cidr_block"
    };
    let mut m = fields(&[
        ("protocol", Value::str(protocol)),
        ("from_port", Value::Int(from)),
        ("to_port", Value::Int(to)),
        (key, Value::str(source)),
    ]);
    if let Some(d) = description {
        m.insert("description".into(), Value::str(d));
    }
    Value::Map(m)
}

async fn create(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> Result<Observed, ProviderError> {
    let token = uuid::Uuid::new_v4().to_string();
    p.create(
        cx,
        &Desired {
            address,
            fields: f,
            tags: t,
            token: &token,
            replacing: None,
        },
    )
    .await
}

async fn update(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    live: &Observed,
    f: &Fields,
    t: &IndexMap<String, String>,
    changes: &[FieldChange],
) -> Observed {
    let want = Desired {
        address,
        fields: f,
        tags: t,
        token: "unused",
        replacing: None,
    };
    p.update(cx, live, &want, changes).await.expect("update")
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    p.observe(cx, &[id.to_string()])
        .await
        .expect("observe")
        .remove(id)
}

/// AWS calls of one operation so far, whatever the service is called.
fn calls(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

fn changed_fields(changes: &[FieldChange]) -> Vec<&str> {
    changes.iter().map(|c| c.field.as_str()).collect()
}

async fn raw_vpc(raw: &aws_sdk_ec2::Client) -> String {
    let out = raw
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    out.vpc().and_then(|v| v.vpc_id()).unwrap().to_string()
}

async fn raw_subnet(raw: &aws_sdk_ec2::Client, vpc: &str, cidr: &str) -> String {
    let out = raw
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    out.subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string()
}

/// Subnets associated with the table, as an independent client sees them.
async fn raw_associated(raw: &aws_sdk_ec2::Client, table: &str) -> Vec<String> {
    let out = raw
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("route-table-id")
                .values(table)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut subnets: Vec<String> = out
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .filter_map(|a| a.subnet_id().map(str::to_string))
        .collect();
    subnets.sort();
    subnets
}

async fn raw_group(
    raw: &aws_sdk_ec2::Client,
    id: &str,
) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    let out = raw
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.security_groups().first().cloned()
}

#[tokio::test]
async fn route_table_routes_and_associations_drift_and_repair() {
    let moto = common::Moto::start();
    let raw = moto.ec2().await;
    let cx = connect(&moto).await;
    let rt = RouteTable;

    let vpc = raw_vpc(&raw).await;
    let s1 = raw_subnet(&raw, &vpc, "10.0.1.0/24").await;
    let s2 = raw_subnet(&raw, &vpc, "10.0.2.0/24").await;
    let igw = raw
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .unwrap()
        .to_string();
    raw.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let alloc = raw
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_string();
    let nat = raw
        .create_nat_gateway()
        .subnet_id(&s1)
        .allocation_id(&alloc)
        .send()
        .await
        .unwrap()
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .unwrap()
        .to_string();

    let address = "route_table.public";
    let t = tags(&cx, address);
    let want = fields(&[
        ("vpc_id", Value::str(&vpc)),
        (
            "routes",
            Value::List(vec![
                route("0.0.0.0/0", "gateway_id", &igw),
                route("192.168.0.0/16", "nat_gateway_id", &nat),
            ]),
        ),
        ("subnet_ids", strs(&[&s2, &s1])),
    ]);

    // A route with two targets is refused before anything is created.
    let mut bad = want.clone();
    bad.insert(
        "routes".into(),
        Value::List(vec![Value::Map(fields(&[
            ("destination_cidr_block", Value::str("0.0.0.0/0")),
            ("gateway_id", Value::str(&igw)),
            ("nat_gateway_id", Value::str(&nat)),
        ]))]),
    );
    let before = calls(&cx, "CreateRouteTable");
    match create(&rt, &cx, address, &bad, &t).await {
        Err(ProviderError::InvalidInput(m)) => assert!(m.contains("routes[0]"), "{m}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(calls(&cx, "CreateRouteTable"), before);

    let created = create(&rt, &cx, address, &want, &t).await.expect("create");
    let id = created.id.clone();
    assert!(id.starts_with("rtb-"), "{id}");
    assert_eq!(
        created.attributes["arn"],
        Value::str(format!("arn:aws:ec2:us-east-1:{ACCOUNT}:route-table/{id}"))
    );
    assert_eq!(created.attributes["owner_id"], Value::str(ACCOUNT));
    assert_eq!(raw_associated(&raw, &id).await, {
        let mut v = vec![s1.clone(), s2.clone()];
        v.sort();
        v
    });

    // Observed equals desired: the local route is left out, route maps carry only set keys.
    let live = observe_one(&rt, &cx, &id).await.expect("table exists");
    assert!(
        rt.diff(&want, &live.fields).is_empty(),
        "{:?}",
        rt.diff(&want, &live.fields)
    );
    assert_eq!(
        live.fields["routes"].as_list().unwrap().len(),
        2,
        "{}",
        live.fields["routes"]
    );
    assert_eq!(live.tags, t);
    assert_eq!(live.attributes, created.attributes);
    let found = rt.find_tagged(&cx, &[address.to_string()]).await.unwrap();
    assert_eq!(
        found
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, o)| o.id.as_str()),
        Some(id.as_str())
    );

    // A route deleted out of band is drift on `routes`, and update puts it back.
    raw.delete_route()
        .route_table_id(&id)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let live = observe_one(&rt, &cx, &id).await.unwrap();
    let changes = rt.diff(&want, &live.fields);
    assert_eq!(changed_fields(&changes), ["routes"]);
    assert!(!changes[0].forces_replace);
    update(&rt, &cx, address, &live, &want, &t, &changes).await;
    let live = observe_one(&rt, &cx, &id).await.unwrap();
    assert!(
        rt.diff(&want, &live.fields).is_empty(),
        "{:?}",
        rt.diff(&want, &live.fields)
    );

    // A route repointed and a route added out of band: both drift, both undone.
    raw.replace_route()
        .route_table_id(&id)
        .destination_cidr_block("192.168.0.0/16")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    raw.create_route()
        .route_table_id(&id)
        .destination_cidr_block("172.16.0.0/12")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let live = observe_one(&rt, &cx, &id).await.unwrap();
    let changes = rt.diff(&want, &live.fields);
    assert_eq!(changed_fields(&changes), ["routes"]);
    update(&rt, &cx, address, &live, &want, &t, &changes).await;
    let live = observe_one(&rt, &cx, &id).await.unwrap();
    assert!(
        rt.diff(&want, &live.fields).is_empty(),
        "{}",
        live.fields["routes"]
    );

    // One subnet fewer: update disassociates it and leaves the other.
    let mut fewer = want.clone();
    fewer.insert("subnet_ids".into(), strs(&[&s1]));
    let changes = rt.diff(&fewer, &live.fields);
    assert_eq!(changed_fields(&changes), ["subnet_ids"]);
    update(&rt, &cx, address, &live, &fewer, &t, &changes).await;
    assert_eq!(raw_associated(&raw, &id).await, std::slice::from_ref(&s1));
    let live = observe_one(&rt, &cx, &id).await.unwrap();
    assert!(rt.diff(&fewer, &live.fields).is_empty());
    assert!(!rt.diff(&want, &live.fields).is_empty());

    // Delete disassociates first (AWS refuses otherwise); deleting again is success.
    rt.delete(&cx, &id).await.expect("delete");
    assert!(observe_one(&rt, &cx, &id).await.is_none());
    assert!(raw_associated(&raw, &id).await.is_empty());
    rt.delete(&cx, &id)
        .await
        .expect("delete of a deleted table");
}

#[tokio::test]
async fn security_group_rules_drift_and_repair() {
    let moto = common::Moto::start();
    let raw = moto.ec2().await;
    let cx = connect(&moto).await;
    let sg = SecurityGroup;
    let vpc = raw_vpc(&raw).await;
    let base = |name: &str| {
        fields(&[
            ("name", Value::str(name)),
            ("description", Value::str("Managed by reconcile")),
            ("vpc_id", Value::str(&vpc)),
        ])
    };

    // No rules declared: nothing is managed, AWS's default egress stays.
    let app_want = base("app");
    let app = create(
        &sg,
        &cx,
        "security_group.app",
        &app_want,
        &tags(&cx, "security_group.app"),
    )
    .await
    .expect("create app");
    assert!(app.id.starts_with("sg-"));
    assert_eq!(app.attributes["name"], Value::str("app"));
    assert_eq!(app.attributes["owner_id"], Value::str(ACCOUNT));
    assert!(app.attributes["arn"]
        .as_str()
        .unwrap()
        .ends_with(&format!("security-group/{}", app.id)));
    let live_app = observe_one(&sg, &cx, &app.id).await.unwrap();
    assert!(sg.diff(&app_want, &live_app.fields).is_empty());
    assert_eq!(
        live_app.fields["egress"],
        Value::List(vec![rule("-1", 0, 0, "0.0.0.0/0", None)])
    );

    // Ingress from a CIDR and from another group.
    let address = "security_group.db";
    let t = tags(&cx, address);
    let mut db_want = base("db");
    db_want.insert(
        "ingress".into(),
        Value::List(vec![
            rule("tcp", 5432, 5432, "10.0.0.0/16", Some("app subnets")),
            rule("tcp", 5432, 5432, &app.id, None),
        ]),
    );
    let db = create(&sg, &cx, address, &db_want, &t)
        .await
        .expect("create db");
    let live = observe_one(&sg, &cx, &db.id).await.unwrap();
    assert!(
        sg.diff(&db_want, &live.fields).is_empty(),
        "{:?}",
        sg.diff(&db_want, &live.fields)
    );
    assert_eq!(live.tags, t);
    let found = sg.find_tagged(&cx, &[address.to_string()]).await.unwrap();
    assert_eq!(
        found
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, o)| o.id.as_str()),
        Some(db.id.as_str())
    );

    // A rule added out of band is drift on `ingress`; update revokes it and keeps the rest.
    raw.authorize_security_group_ingress()
        .group_id(&db.id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live = observe_one(&sg, &cx, &db.id).await.unwrap();
    let changes = sg.diff(&db_want, &live.fields);
    assert_eq!(changed_fields(&changes), ["ingress"]);
    assert!(!changes[0].forces_replace);
    assert!(changes[0].old.as_ref().unwrap().to_string().contains("22"));
    update(&sg, &cx, address, &live, &db_want, &t, &changes).await;
    let live = observe_one(&sg, &cx, &db.id).await.unwrap();
    assert!(
        sg.diff(&db_want, &live.fields).is_empty(),
        "{}",
        live.fields["ingress"]
    );
    let ingress = raw_group(&raw, &db.id)
        .await
        .unwrap()
        .ip_permissions()
        .to_vec();
    assert!(
        ingress.iter().all(|p| p.from_port() != Some(22)),
        "{ingress:?}"
    );
    assert_eq!(
        ingress
            .iter()
            .map(|p| p.ip_ranges().len() + p.user_id_group_pairs().len())
            .sum::<usize>(),
        2
    );

    // A rule revoked out of band, and a description changed: both put back.
    raw.revoke_security_group_ingress()
        .group_id(&db.id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&app.id).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut renamed = db_want.clone();
    renamed.insert(
        "ingress".into(),
        Value::List(vec![
            rule("tcp", 5432, 5432, "10.0.0.0/16", Some("private subnets")),
            rule("tcp", 5432, 5432, &app.id, None),
        ]),
    );
    let live = observe_one(&sg, &cx, &db.id).await.unwrap();
    let changes = sg.diff(&renamed, &live.fields);
    assert_eq!(changed_fields(&changes), ["ingress"]);
    update(&sg, &cx, address, &live, &renamed, &t, &changes).await;
    let live = observe_one(&sg, &cx, &db.id).await.unwrap();
    assert!(
        sg.diff(&renamed, &live.fields).is_empty(),
        "{}",
        live.fields["ingress"]
    );

    // Declared egress is exact: the default allow-all goes unless declared.
    let mut locked_want = base("locked");
    locked_want.insert(
        "egress".into(),
        Value::List(vec![rule("tcp", 443, 443, "0.0.0.0/0", None)]),
    );
    locked_want.insert("ingress".into(), Value::List(vec![]));
    let locked = create(
        &sg,
        &cx,
        "security_group.locked",
        &locked_want,
        &tags(&cx, "security_group.locked"),
    )
    .await
    .expect("create locked");
    let live = observe_one(&sg, &cx, &locked.id).await.unwrap();
    assert!(
        sg.diff(&locked_want, &live.fields).is_empty(),
        "{}",
        live.fields["egress"]
    );
    assert_eq!(live.fields["egress"], locked_want["egress"]);

    // Declaring the default allow-all keeps it; ports written with -1 read as 0 and 0.
    let mut open_want = base("open");
    open_want.insert(
        "egress".into(),
        Value::List(vec![rule("-1", 0, 65535, "0.0.0.0/0", None)]),
    );
    let open = create(
        &sg,
        &cx,
        "security_group.open",
        &open_want,
        &tags(&cx, "security_group.open"),
    )
    .await
    .expect("create open");
    let live = observe_one(&sg, &cx, &open.id).await.unwrap();
    assert!(
        sg.diff(&open_want, &live.fields).is_empty(),
        "{}",
        live.fields["egress"]
    );

    // Observing three groups (and one that is gone) is one DescribeSecurityGroups call.
    let ids = vec![
        app.id.clone(),
        db.id.clone(),
        locked.id.clone(),
        "sg-0123456789abcdef0".to_string(),
    ];
    let before = calls(&cx, "DescribeSecurityGroups");
    let seen = sg.observe(&cx, &ids).await.unwrap();
    assert_eq!(calls(&cx, "DescribeSecurityGroups") - before, 1);
    assert_eq!(seen.len(), 3);

    // A rule with both sources, or none, is refused and names the rule.
    let mut bad = base("bad");
    let mut both = rule("tcp", 1, 2, "10.0.0.0/8", None);
    if let Value::Map(m) = &mut both {
        m.insert("source_security_group_id".into(), Value::str(&app.id));
    }
    bad.insert("ingress".into(), Value::List(vec![both]));
    let before = calls(&cx, "CreateSecurityGroup");
    match create(
        &sg,
        &cx,
        "security_group.bad",
        &bad,
        &tags(&cx, "security_group.bad"),
    )
    .await
    {
        Err(ProviderError::InvalidInput(m)) => assert!(m.contains("ingress[0]"), "{m}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(calls(&cx, "CreateSecurityGroup"), before);

    // Same name in the same VPC cannot exist twice: only a rename or a move creates first.
    let name = FieldChange::new(
        "name",
        Some(Value::str("db")),
        Some(Value::str("db2")),
        true,
    );
    let description = FieldChange::new(
        "description",
        Some(Value::str("a")),
        Some(Value::str("b")),
        true,
    );
    assert!(sg.create_before_destroy(&[name, description.clone()]));
    assert!(!sg.create_before_destroy(&[description]));

    for id in [&db.id, &locked.id, &open.id, &app.id] {
        sg.delete(&cx, id).await.expect("delete");
        sg.delete(&cx, id).await.expect("delete of a deleted group");
    }
    assert!(sg.observe(&cx, &ids).await.unwrap().is_empty());
}

#[tokio::test]
async fn security_group_rule_create_observe_delete() {
    let moto = common::Moto::start();
    let raw = moto.ec2().await;
    let cx = connect(&moto).await;
    let sg = SecurityGroup;
    let sgr = SecurityGroupRule;
    let vpc = raw_vpc(&raw).await;
    let group = |name: &str| {
        fields(&[
            ("name", Value::str(name)),
            ("description", Value::str("Managed by reconcile")),
            ("vpc_id", Value::str(&vpc)),
        ])
    };
    let a = create(
        &sg,
        &cx,
        "security_group.a",
        &group("a"),
        &tags(&cx, "security_group.a"),
    )
    .await
    .unwrap();
    let b = create(
        &sg,
        &cx,
        "security_group.b",
        &group("b"),
        &tags(&cx, "security_group.b"),
    )
    .await
    .unwrap();
    let no_tags = IndexMap::new();

    // a allows b in, with a description (moto only revokes it when the description matches).
    let from_b = fields(&[
        ("security_group_id", Value::str(&a.id)),
        ("type", Value::str("ingress")),
        ("protocol", Value::str("tcp")),
        ("from_port", Value::Int(5432)),
        ("to_port", Value::Int(5432)),
        ("source_security_group_id", Value::str(&b.id)),
        ("description", Value::str("from b")),
    ]);
    let r1 = create(&sgr, &cx, "security_group_rule.a_from_b", &from_b, &no_tags)
        .await
        .expect("create rule");
    assert_eq!(r1.id, format!("{}|ingress|tcp|5432|5432|{}", a.id, b.id));
    assert_eq!(r1.attributes["id"], Value::str(&r1.id));

    // b may reach 10.0.0.0/16 on 443.
    let to_vpc = fields(&[
        ("security_group_id", Value::str(&b.id)),
        ("type", Value::str("egress")),
        ("protocol", Value::str("tcp")),
        ("from_port", Value::Int(443)),
        ("to_port", Value::Int(443)),
        ("cidr_block", Value::str("10.0.0.0/16")),
    ]);
    let r2 = create(&sgr, &cx, "security_group_rule.b_to_vpc", &to_vpc, &no_tags)
        .await
        .expect("create rule");
    assert_eq!(r2.id, format!("{}|egress|tcp|443|443|10.0.0.0/16", b.id));

    // A create that finds the rule already there (an interrupted apply) is success.
    let again = create(&sgr, &cx, "security_group_rule.a_from_b", &from_b, &no_tags)
        .await
        .expect("duplicate create");
    assert_eq!(again.id, r1.id);
    let pairs: usize = raw_group(&raw, &a.id)
        .await
        .unwrap()
        .ip_permissions()
        .iter()
        .map(|p| p.user_id_group_pairs().len())
        .sum();
    assert_eq!(pairs, 1);

    // Both rules, in two groups, are observed with one describe call and match what was declared.
    let missing = format!("{}|ingress|udp|53|53|10.9.0.0/16", a.id);
    let before = calls(&cx, "DescribeSecurityGroups");
    let seen = sgr
        .observe(&cx, &[r1.id.clone(), r2.id.clone(), missing.clone()])
        .await
        .unwrap();
    assert_eq!(calls(&cx, "DescribeSecurityGroups") - before, 1);
    assert_eq!(seen.len(), 2);
    assert!(!seen.contains_key(&missing));
    assert!(
        sgr.diff(&from_b, &seen[&r1.id].fields).is_empty(),
        "{:?}",
        seen[&r1.id].fields
    );
    assert!(
        sgr.diff(&to_vpc, &seen[&r2.id].fields).is_empty(),
        "{:?}",
        seen[&r2.id].fields
    );

    // A description changed out of band is a replace, deleted before it is recreated.
    let mut renamed = from_b.clone();
    renamed.insert("description".into(), Value::str("from group b"));
    let changes = sgr.diff(&renamed, &seen[&r1.id].fields);
    assert_eq!(changed_fields(&changes), ["description"]);
    assert!(changes[0].forces_replace);
    assert!(!sgr.create_before_destroy(&changes));

    // Rules are matched by content, not tags.
    assert!(sgr.find_tagged(&cx, &[]).await.unwrap().is_empty());

    // A malformed id is refused rather than taken for a deleted rule.
    assert!(matches!(
        sgr.observe(&cx, &["sg-1|ingress|tcp".to_string()]).await,
        Err(ProviderError::InvalidInput(_))
    ));

    sgr.delete(&cx, &r1.id).await.expect("delete rule");
    sgr.delete(&cx, &r1.id)
        .await
        .expect("delete of a deleted rule");
    let pairs: usize = raw_group(&raw, &a.id)
        .await
        .unwrap()
        .ip_permissions()
        .iter()
        .map(|p| p.user_id_group_pairs().len())
        .sum();
    assert_eq!(pairs, 0);
    sgr.delete(&cx, &r2.id).await.expect("delete rule");
    assert!(sgr
        .observe(&cx, &[r1.id.clone(), r2.id.clone()])
        .await
        .unwrap()
        .is_empty());

    // With its group gone, the rule is gone too.
    sg.delete(&cx, &b.id).await.unwrap();
    sgr.delete(&cx, &r2.id)
        .await
        .expect("delete of a rule whose group is gone");
    sg.delete(&cx, &a.id).await.unwrap();
}
