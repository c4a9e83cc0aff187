//! The conformance suite: every AWS kind joins with one fixture, and one harness
//! checks each the same way (create, clean re-plan, in-place updates,
//! replacements, drift, adoption by tags, destroy, and what observing costs).

mod common;
#[path = "conformance/harness.rs"]
mod harness;

use harness::{sdk, Drift, Edit, Fixture, Oob, Replace};
use reconcile_core::model::{Fields, Value};

/// One test per fixture, so kinds run in parallel and fail on their own.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            harness::run(&fixtures::$name()).await;
        }
    )*};
}

conformance!(vpc, subnet);

fn set(f: &mut Fields, k: &str, v: String) {
    f.insert(k.into(), Value::Str(v));
}

fn same(_: &mut Fields, _: usize) {}

/// EC2 kinds describe up to 200 filter values in one call.
fn one(_: u64) -> u64 {
    1
}

mod fixtures {
    use super::*;
    use aws_sdk_ec2::types::AttributeBooleanValue;

    async fn ec2(url: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&sdk(url).await)
    }

    pub fn vpc() -> Fixture {
        Fixture {
            kind: "vpc",
            toml: "[vpc.main]\ncidr_block = \"10.0.0.0/16\"\nenable_dns_hostnames = false\n",
            address: "vpc.main",
            updates: &[Edit {
                from: "enable_dns_hostnames = false",
                to: "enable_dns_hostnames = true",
                field: "enable_dns_hostnames",
            }],
            replaces: &[
                Replace {
                    from: "\"10.0.0.0/16\"",
                    to: "\"10.1.0.0/16\"",
                    field: "cidr_block",
                    apply: true,
                },
                Replace {
                    from: "enable_dns_hostnames = true",
                    to: "enable_dns_hostnames = true\ninstance_tenancy = \"dedicated\"",
                    field: "instance_tenancy",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "enable_dns_support",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        ec2(&url)
                            .await
                            .modify_vpc_attribute()
                            .vpc_id(id)
                            .enable_dns_support(
                                AttributeBooleanValue::builder().value(false).build(),
                            )
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "cidr_block", format!("10.{}.0.0/16", 10 + i)),
            // The DNS attributes have no batch read: two DescribeVpcAttribute per VPC.
            budget: |n| 1 + 2 * n,
        }
    }

    pub fn subnet() -> Fixture {
        Fixture {
            kind: "subnet",
            toml: "[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n[subnet.a]\nvpc_id = \"${vpc.main.id}\"\n\
                   cidr_block = \"10.0.1.0/24\"\navailability_zone = \"us-east-1a\"\n\
                   map_public_ip_on_launch = false\n",
            address: "subnet.a",
            updates: &[Edit {
                from: "map_public_ip_on_launch = false",
                to: "map_public_ip_on_launch = true",
                field: "map_public_ip_on_launch",
            }],
            replaces: &[
                Replace {
                    from: "\"10.0.1.0/24\"",
                    to: "\"10.0.2.0/24\"",
                    field: "cidr_block",
                    apply: true,
                },
                Replace {
                    from: "us-east-1a",
                    to: "us-east-1b",
                    field: "availability_zone",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "map_public_ip_on_launch",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        ec2(&url)
                            .await
                            .modify_subnet_attribute()
                            .subnet_id(id)
                            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "cidr_block", format!("10.0.{}.0/24", 100 + i)),
            budget: one,
        }
    }
}
