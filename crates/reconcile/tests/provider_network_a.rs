//! The subnet, internet_gateway, elastic_ip and nat_gateway providers, called
//! directly through the library against a private moto server: create, observe,
//! find by tags, update, delete, and what observing costs in AWS calls.

mod common;

use indexmap::IndexMap;
use reconcile_aws::ec2::elastic_ip::ElasticIp;
use reconcile_aws::ec2::internet_gateway::InternetGateway;
use reconcile_aws::ec2::nat_gateway::NatGateway;
use reconcile_aws::ec2::subnet::Subnet;
use reconcile_aws::ec2::vpc::Vpc;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};

const STACK: &str = "test-stack";
const ACCOUNT: &str = "123456789012";

async fn connect(moto: &common::Moto, stack: &str) -> Cx {
    let opts = AwsOptions {
        region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, stack, CallCounter::default()).await
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn tags(cx: &Cx, address: &str, extra: &[(&str, &str)]) -> IndexMap<String, String> {
    let mut t: IndexMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.insert("reconcile:stack".into(), cx.stack.clone());
    t.insert("reconcile:address".into(), address.into());
    t
}

fn tags_value(t: &IndexMap<String, String>) -> Value {
    Value::Map(
        t.iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

/// The changes the planner would hand to `update`: fields plus the tag set.
fn changes(
    p: &dyn Provider,
    want: &Fields,
    want_tags: &IndexMap<String, String>,
    live: &Observed,
) -> Vec<FieldChange> {
    let mut want = want.clone();
    want.insert("tags".into(), tags_value(want_tags));
    let mut have = live.fields.clone();
    have.insert("tags".into(), tags_value(&live.tags));
    p.diff(&want, &have)
}

async fn create(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> Observed {
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
}

async fn update(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    live: &Observed,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> Observed {
    let ch = changes(p, f, t, live);
    assert!(!ch.is_empty(), "{address}: the update test needs a change");
    assert!(
        ch.iter().all(|c| !c.forces_replace),
        "{address}: {ch:?} would force a replacement"
    );
    let want = Desired {
        address,
        fields: f,
        tags: t,
        token: "unused",
        replacing: None,
    };
    p.update(cx, live, &want, &ch)
        .await
        .unwrap_or_else(|e| panic!("update {address}: {e}"))
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    let mut found = p.observe(cx, &[id.to_string()]).await.expect("observe");
    assert!(found.len() <= 1, "observe {id} answered {found:?}");
    found.remove(id)
}

/// Observes `id` and checks it is exactly what was asked for: every schema field
/// present, no field difference, the full tag set.
async fn assert_live(
    p: &dyn Provider,
    cx: &Cx,
    id: &str,
    want: &Fields,
    want_tags: &IndexMap<String, String>,
) -> Observed {
    let live = observe_one(p, cx, id)
        .await
        .unwrap_or_else(|| panic!("{id} is not observed"));
    for f in p.schema().fields {
        assert!(
            live.fields.contains_key(f.name),
            "{id}: observed fields lack {}: {:?}",
            f.name,
            live.fields
        );
    }
    let diff = changes(p, want, want_tags, &live);
    assert!(diff.is_empty(), "{id}: live differs from desired: {diff:?}");
    live
}

async fn assert_found_by_tag(p: &dyn Provider, cx: &Cx, address: &str, id: &str) {
    let found = p
        .find_tagged(cx, &[address.to_string()])
        .await
        .expect("find_tagged");
    assert_eq!(
        found
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, o)| o.id.as_str()),
        Some(id),
        "find_tagged({address}): {found:?}"
    );
    assert_eq!(
        found.len(),
        1,
        "find_tagged({address}) found others: {found:?}"
    );
    let all = p.find_tagged(cx, &[]).await.expect("find_tagged (all)");
    assert_eq!(
        all.iter()
            .find(|(a, _)| a == address)
            .map(|(_, o)| o.id.as_str()),
        Some(id)
    );
}

async fn assert_deleted(p: &dyn Provider, cx: &Cx, id: &str) {
    p.delete(cx, id)
        .await
        .unwrap_or_else(|e| panic!("delete {id}: {e}"));
    assert!(
        observe_one(p, cx, id).await.is_none(),
        "{id} is still observed after delete"
    );
    // Deleting what is already gone is success: a retried apply must not fail on it.
    p.delete(cx, id)
        .await
        .unwrap_or_else(|e| panic!("second delete {id}: {e}"));
}

async fn make_vpc(cx: &Cx, name: &str, cidr: &str) -> String {
    let f = fields(&[("cidr_block", Value::str(cidr))]);
    let address = format!("vpc.{name}");
    create(&Vpc, cx, &address, &f, &tags(cx, &address, &[]))
        .await
        .id
}

fn subnet_fields(vpc: &str, cidr: &str, az: &str, public: bool) -> Fields {
    fields(&[
        ("vpc_id", Value::str(vpc)),
        ("cidr_block", Value::str(cidr)),
        ("availability_zone", Value::str(az)),
        ("map_public_ip_on_launch", Value::Bool(public)),
    ])
}

fn count(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test]
async fn subnet_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let vpc = make_vpc(&cx, "main", "10.0.0.0/16").await;
    let p = &Subnet;

    let addr = "subnet.app_a";
    let want = subnet_fields(&vpc, "10.0.1.0/24", "us-east-1a", false);
    let t = tags(&cx, addr, &[("Tier", "private")]);
    let made = create(p, &cx, addr, &want, &t).await;
    assert!(made.id.starts_with("subnet-"), "{made:?}");
    assert_eq!(
        made.attributes["arn"],
        Value::str(format!(
            "arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/{}",
            made.id
        ))
    );
    assert_eq!(made.attributes["owner_id"], Value::str(ACCOUNT));

    let live = assert_live(p, &cx, &made.id, &want, &t).await;
    assert_eq!(
        live.attributes, made.attributes,
        "create and observe disagree on attributes"
    );
    assert_found_by_tag(p, &cx, addr, &made.id).await;

    // In place: the public-IP flag and the tags.
    let want2 = subnet_fields(&vpc, "10.0.1.0/24", "us-east-1a", true);
    let t2 = tags(&cx, addr, &[("Tier", "public"), ("Owner", "net")]);
    let after = update(p, &cx, addr, &live, &want2, &t2).await;
    assert_eq!(after.id, made.id);
    assert_live(p, &cx, &made.id, &want2, &t2).await;
    let raw = moto
        .ec2()
        .await
        .describe_subnets()
        .subnet_ids(&made.id)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.subnets()[0].map_public_ip_on_launch(), Some(true));

    // Back again, and a tag removed.
    let t3 = tags(&cx, addr, &[("Tier", "private")]);
    let live = observe_one(p, &cx, &made.id).await.unwrap();
    update(p, &cx, addr, &live, &want, &t3).await;
    let live = assert_live(p, &cx, &made.id, &want, &t3).await;
    assert!(
        !live.tags.contains_key("Owner"),
        "stale tag kept: {:?}",
        live.tags
    );

    // A subnet that starts public gets the flag at create time.
    let addr_b = "subnet.public_b";
    let want_b = subnet_fields(&vpc, "10.0.2.0/24", "us-east-1b", true);
    let t_b = tags(&cx, addr_b, &[]);
    let b = create(p, &cx, addr_b, &want_b, &t_b).await;
    assert_eq!(b.fields, want_b);
    assert_live(p, &cx, &b.id, &want_b, &t_b).await;

    // A change of the CIDR forces a replacement.
    let moved = subnet_fields(&vpc, "10.0.3.0/24", "us-east-1b", true);
    let ch = p.diff(&moved, &observe_one(p, &cx, &b.id).await.unwrap().fields);
    assert_eq!(ch.len(), 1);
    assert!(ch[0].forces_replace);

    assert_deleted(p, &cx, &made.id).await;
    assert_deleted(p, &cx, &b.id).await;
    // With its subnets gone, the VPC can go too.
    Vpc.delete(&cx, &vpc).await.expect("delete the VPC");
}

#[test]
fn subnet_replacement_order() {
    let p = &Subnet;
    let change = |field: &str, old: &str, new: Value| {
        FieldChange::new(field, Some(Value::str(old)), Some(new), true)
    };
    // Same range: the old subnet must go first.
    assert!(!p.create_before_destroy(&[change(
        "availability_zone",
        "us-east-1a",
        Value::str("us-east-1b")
    )]));
    // A disjoint range can exist beside the old one.
    assert!(p.create_before_destroy(&[change(
        "cidr_block",
        "10.0.1.0/24",
        Value::str("10.0.2.0/24")
    )]));
    // An overlapping range cannot.
    assert!(!p.create_before_destroy(&[change(
        "cidr_block",
        "10.0.0.0/23",
        Value::str("10.0.1.0/24")
    )]));
    assert!(!p.create_before_destroy(&[change(
        "cidr_block",
        "10.0.1.0/24",
        Value::str("10.0.0.0/16")
    )]));
    // Another VPC: no clash whatever the range.
    assert!(p.create_before_destroy(&[change("vpc_id", "vpc-1", Value::Unknown)]));
    assert!(p.create_before_destroy(&[change("cidr_block", "10.0.1.0/24", Value::Unknown)]));
}

#[tokio::test]
async fn observing_three_subnets_is_one_call() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let vpc = make_vpc(&cx, "main", "10.1.0.0/16").await;
    let p = &Subnet;
    let mut ids = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1c"]
        .iter()
        .enumerate()
    {
        let addr = format!("subnet.s{i}");
        let f = subnet_fields(&vpc, &format!("10.1.{i}.0/24"), az, false);
        ids.push(create(p, &cx, &addr, &f, &tags(&cx, &addr, &[])).await.id);
    }
    // A subnet deleted outside reconcile is simply absent, not an error for the batch.
    ids.push("subnet-0123456789abcdef0".into());

    let before_total = cx.calls.total();
    let before = count(&cx, "DescribeSubnets");
    let found = p.observe(&cx, &ids).await.expect("observe");
    assert_eq!(
        count(&cx, "DescribeSubnets") - before,
        1,
        "calls: {:?}",
        cx.calls.snapshot()
    );
    assert_eq!(
        cx.calls.total() - before_total,
        1,
        "calls: {:?}",
        cx.calls.snapshot()
    );
    assert_eq!(found.len(), 3, "{found:?}");
    for id in &ids[..3] {
        assert!(found.contains_key(id), "{id} missing from {found:?}");
    }

    // Finding the stack's subnets by tag is one call too.
    let before = count(&cx, "DescribeSubnets");
    let tagged = p.find_tagged(&cx, &[]).await.expect("find_tagged");
    assert_eq!(count(&cx, "DescribeSubnets") - before, 1);
    assert_eq!(tagged.len(), 3, "{tagged:?}");
}

#[tokio::test]
async fn internet_gateway_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let vpc1 = make_vpc(&cx, "one", "10.0.0.0/16").await;
    let vpc2 = make_vpc(&cx, "two", "10.2.0.0/16").await;
    let p = &InternetGateway;

    let addr = "internet_gateway.main";
    let want = fields(&[("vpc_id", Value::str(&vpc1))]);
    let t = tags(&cx, addr, &[("Name", "main")]);
    let made = create(p, &cx, addr, &want, &t).await;
    assert!(made.id.starts_with("igw-"), "{made:?}");
    assert_eq!(
        made.attributes["arn"],
        Value::str(format!(
            "arn:aws:ec2:us-east-1:{ACCOUNT}:internet-gateway/{}",
            made.id
        ))
    );
    let live = assert_live(p, &cx, &made.id, &want, &t).await;
    assert_eq!(live.attributes, made.attributes);
    assert_found_by_tag(p, &cx, addr, &made.id).await;

    // Moving the attachment is an update, not a replacement.
    let want2 = fields(&[("vpc_id", Value::str(&vpc2))]);
    let t2 = tags(&cx, addr, &[("Name", "moved")]);
    let after = update(p, &cx, addr, &live, &want2, &t2).await;
    assert_eq!(after.id, made.id);
    assert_eq!(after.fields["vpc_id"], Value::str(&vpc2));
    assert_live(p, &cx, &made.id, &want2, &t2).await;
    let raw = moto
        .ec2()
        .await
        .describe_internet_gateways()
        .internet_gateway_ids(&made.id)
        .send()
        .await
        .unwrap();
    let attached: Vec<&str> = raw.internet_gateways()[0]
        .attachments()
        .iter()
        .filter_map(|a| a.vpc_id())
        .collect();
    assert_eq!(attached, vec![vpc2.as_str()]);

    // A detached gateway reports vpc_id "", so a declared VPC shows as a change.
    let addr_d = "internet_gateway.spare";
    let t_d = tags(&cx, addr_d, &[]);
    let spare = create(p, &cx, addr_d, &Fields::new(), &t_d).await;
    assert_eq!(spare.fields["vpc_id"], Value::str(""));
    let live_d = assert_live(p, &cx, &spare.id, &Fields::new(), &t_d).await;
    assert_eq!(live_d.fields["vpc_id"], Value::str(""));
    let ch = p.diff(&want, &live_d.fields);
    assert_eq!(ch.len(), 1);
    assert!(!ch[0].forces_replace);
    update(p, &cx, addr_d, &live_d, &want, &t_d).await;
    assert_live(p, &cx, &spare.id, &want, &t_d).await;

    // Delete detaches first; the VPCs are then free to go.
    assert_deleted(p, &cx, &made.id).await;
    assert_deleted(p, &cx, &spare.id).await;
    Vpc.delete(&cx, &vpc1).await.expect("delete vpc1");
    Vpc.delete(&cx, &vpc2).await.expect("delete vpc2");
}

#[tokio::test]
async fn elastic_ip_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let p = &ElasticIp;

    let addr = "elastic_ip.nat";
    let want = Fields::new();
    let t = tags(&cx, addr, &[("Purpose", "nat")]);
    let made = create(p, &cx, addr, &want, &t).await;
    assert!(made.id.starts_with("eipalloc-"), "{made:?}");
    assert_eq!(made.attributes["allocation_id"], Value::str(&made.id));
    let ip = made.attributes["public_ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "public_ip {ip:?}");

    let live = assert_live(p, &cx, &made.id, &want, &t).await;
    assert_eq!(live.attributes, made.attributes);
    assert_eq!(live.fields, made.fields);
    // Naming the region's own border group is the same as leaving it out.
    let explicit = fields(&[("network_border_group", Value::str("us-east-1"))]);
    assert!(p.diff(&explicit, &live.fields).is_empty());
    assert_found_by_tag(p, &cx, addr, &made.id).await;

    let t2 = tags(&cx, addr, &[("Purpose", "nat-a")]);
    update(p, &cx, addr, &live, &want, &t2).await;
    assert_live(p, &cx, &made.id, &want, &t2).await;

    assert_deleted(p, &cx, &made.id).await;
    let left = moto.ec2().await.describe_addresses().send().await.unwrap();
    assert!(left.addresses().is_empty(), "{:?}", left.addresses());
}

#[tokio::test]
async fn nat_gateway_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let vpc = make_vpc(&cx, "main", "10.0.0.0/16").await;
    let subnet_f = subnet_fields(&vpc, "10.0.0.0/24", "us-east-1a", true);
    let subnet = create(
        &Subnet,
        &cx,
        "subnet.public_a",
        &subnet_f,
        &tags(&cx, "subnet.public_a", &[]),
    )
    .await;
    let eip = create(
        &ElasticIp,
        &cx,
        "elastic_ip.nat",
        &Fields::new(),
        &tags(&cx, "elastic_ip.nat", &[]),
    )
    .await;
    let p = &NatGateway;

    let addr = "nat_gateway.main";
    let want = fields(&[
        ("subnet_id", Value::str(&subnet.id)),
        ("allocation_id", Value::str(&eip.id)),
        ("connectivity_type", Value::str("public")),
    ]);
    let t = tags(&cx, addr, &[("Name", "main")]);
    let made = create(p, &cx, addr, &want, &t).await;
    assert!(made.id.starts_with("nat-"), "{made:?}");
    assert_eq!(made.attributes["public_ip"], eip.attributes["public_ip"]);
    assert!(made.attributes["network_interface_id"]
        .as_str()
        .is_some_and(|s| s.starts_with("eni-")));
    assert!(made.attributes["private_ip"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    let live = assert_live(p, &cx, &made.id, &want, &t).await;
    assert_eq!(live.attributes, made.attributes);
    assert_found_by_tag(p, &cx, addr, &made.id).await;

    // Another stack's gateway at the same address must never be adopted as ours.
    let other = connect(&moto, "other-stack").await;
    let their_f = fields(&[
        ("subnet_id", Value::str(&subnet.id)),
        ("connectivity_type", Value::str("private")),
    ]);
    let theirs = create(p, &other, addr, &their_f, &tags(&other, addr, &[])).await;
    assert_found_by_tag(p, &cx, addr, &made.id).await;
    let found = p.find_tagged(&other, &[addr.to_string()]).await.unwrap();
    assert_eq!(
        found
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, o)| o.id.as_str()),
        Some(theirs.id.as_str())
    );

    // A private gateway: no address, and that reads back as what was declared.
    let addr_p = "nat_gateway.private";
    let want_p = fields(&[
        ("subnet_id", Value::str(&subnet.id)),
        ("connectivity_type", Value::str("private")),
    ]);
    let t_p = tags(&cx, addr_p, &[]);
    let private = create(p, &cx, addr_p, &want_p, &t_p).await;
    let live_p = assert_live(p, &cx, &private.id, &want_p, &t_p).await;
    assert_eq!(live_p.fields["allocation_id"], Value::str(""));
    assert_eq!(live_p.attributes["public_ip"], Value::str(""));

    // Only tags change in place; everything else replaces.
    let t2 = tags(&cx, addr, &[("Name", "main-renamed")]);
    update(p, &cx, addr, &live, &want, &t2).await;
    assert_live(p, &cx, &made.id, &want, &t2).await;
    let moved = fields(&[("subnet_id", Value::str("subnet-elsewhere"))]);
    assert!(p
        .diff(&moved, &live.fields)
        .iter()
        .all(|c| c.forces_replace));

    // Observing both is one call; a deleted gateway stops being observed.
    let before = count(&cx, "DescribeNatGateways");
    let both = p
        .observe(&cx, &[made.id.clone(), private.id.clone()])
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(count(&cx, "DescribeNatGateways") - before, 1);

    assert_deleted(p, &cx, &made.id).await;
    assert_deleted(p, &cx, &private.id).await;
    assert!(p.find_tagged(&cx, &[]).await.unwrap().is_empty());
    p.delete(&other, &theirs.id).await.unwrap();

    // With the gateways gone their address and subnet can follow.
    ElasticIp
        .delete(&cx, &eip.id)
        .await
        .expect("release the EIP");
    assert!(ElasticIp
        .observe(&cx, std::slice::from_ref(&eip.id))
        .await
        .unwrap()
        .is_empty());
    Subnet
        .delete(&cx, &subnet.id)
        .await
        .expect("delete the subnet");
}
