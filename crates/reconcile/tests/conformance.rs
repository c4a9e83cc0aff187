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

conformance!(
    vpc,
    subnet,
    security_group,
    internet_gateway,
    route_table,
    elastic_ip,
    log_group,
    ecr_repository,
    iam_role,
    secret,
    secret_target_attachment,
    db_subnet_group,
    ecs_cluster,
    target_group,
    nat_gateway,
    security_group_rule,
    listener,
    load_balancer,
    ecs_task_definition,
    ecs_service,
    certificate,
    web_acl,
    web_acl_association,
    listener_rule,
    db_instance,
    db_cluster,
    kms_key,
    kms_alias,
    s3_bucket,
    dynamodb_table,
    sns_topic,
    cloudwatch_alarm,
    appautoscaling_target,
    appautoscaling_policy,
    lambda_function,
    lambda_permission,
    eventbridge_rule,
    route53_zone,
    route53_record,
    cognito_user_pool,
    cognito_user_pool_client,
    cognito_identity_pool,
    cognito_identity_pool_roles,
    cloudfront_origin_access_control,
    cloudfront_distribution,
    s3_bucket_policy,
    api_gateway_rest_api,
);
// `api_gateway_account` has no fixture: it is a singleton of the account that
// is never created nor deleted (destroy leaves the role set), has no tags, and
// cannot have the harness's ten copies; provider_apigateway.rs tests it.

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
    use aws_sdk_ec2::types::{AttributeBooleanValue, IpPermission, IpRange, Tag};

    async fn ec2(url: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&sdk(url).await)
    }

    /// A tag added outside reconcile: the drift left for EC2 kinds whose every
    /// field forces a replacement.
    fn ec2_tag_drift() -> Drift {
        Drift {
            field: "tags",
            change: |url, id| -> Oob {
                Box::pin(async move {
                    let tag = Tag::builder().key("Owner").value("someone").build();
                    let ec2 = ec2(&url).await;
                    ec2.create_tags()
                        .resources(id)
                        .tags(tag)
                        .send()
                        .await
                        .unwrap();
                })
            },
        }
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

    pub fn security_group() -> Fixture {
        Fixture {
            kind: "security_group",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[security_group.web]
name = "conf-web"
vpc_id = "${vpc.main.id}"
ingress = [{ protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" }]
"#,
            address: "security_group.web",
            updates: &[Edit {
                from: "ingress = [",
                to: r#"ingress = [{ protocol = "tcp", from_port = 80, to_port = 80, cidr_block = "0.0.0.0/0" }, "#,
                field: "ingress",
            }],
            replaces: &[
                Replace {
                    from: "\"conf-web\"",
                    to: "\"conf-web2\"",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "vpc_id",
                    to: "description = \"other\"\nvpc_id",
                    field: "description",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "ingress",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let ssh = IpPermission::builder()
                            .ip_protocol("tcp")
                            .from_port(22)
                            .to_port(22)
                            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                            .build();
                        ec2(&url)
                            .await
                            .authorize_security_group_ingress()
                            .group_id(id)
                            .ip_permissions(ssh)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            budget: one,
        }
    }

    pub fn internet_gateway() -> Fixture {
        Fixture {
            kind: "internet_gateway",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[vpc.other]
cidr_block = "10.1.0.0/16"

[internet_gateway.main]
vpc_id = "${vpc.main.id}"
"#,
            address: "internet_gateway.main",
            updates: &[Edit {
                from: "vpc_id = \"${vpc.main.id}\"",
                to: "vpc_id = \"${vpc.other.id}\"",
                field: "vpc_id",
            }],
            // No field forces a replacement: the attachment moves in place.
            replaces: &[],
            drift: Drift {
                field: "vpc_id",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let ec2 = ec2(&url).await;
                        let g = ec2.describe_internet_gateways().internet_gateway_ids(&id);
                        let g = g.send().await.unwrap();
                        let vpc = g.internet_gateways()[0].attachments()[0].vpc_id().unwrap();
                        ec2.detach_internet_gateway()
                            .internet_gateway_id(&id)
                            .vpc_id(vpc)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // A VPC takes one gateway: the copies stay detached.
            vary: |f, _| {
                f.shift_remove("vpc_id");
            },
            budget: one,
        }
    }

    pub fn route_table() -> Fixture {
        Fixture {
            kind: "route_table",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[vpc.other]
cidr_block = "10.1.0.0/16"

[internet_gateway.main]
vpc_id = "${vpc.main.id}"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[route_table.public]
vpc_id = "${vpc.main.id}"
routes = [{ destination_cidr_block = "0.0.0.0/0", gateway_id = "${internet_gateway.main.id}" }]
subnet_ids = []
"#,
            address: "route_table.public",
            updates: &[Edit {
                from: "subnet_ids = []",
                to: "subnet_ids = [\"${subnet.a.id}\"]",
                field: "subnet_ids",
            }],
            // Plan only: the table's gateway route cannot follow it into another VPC.
            replaces: &[Replace {
                from: "vpc_id = \"${vpc.main.id}\"\nroutes",
                to: "vpc_id = \"${vpc.other.id}\"\nroutes",
                field: "vpc_id",
                apply: false,
            }],
            drift: Drift {
                field: "routes",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        ec2(&url)
                            .await
                            .delete_route()
                            .route_table_id(id)
                            .destination_cidr_block("0.0.0.0/0")
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // A subnet has one route table: the copies associate none.
            vary: |f, _| {
                f.insert("subnet_ids".into(), Value::List(vec![]));
            },
            budget: one,
        }
    }

    pub fn elastic_ip() -> Fixture {
        Fixture {
            kind: "elastic_ip",
            toml: "[elastic_ip.nat]\n",
            address: "elastic_ip.nat",
            // Tags are all an address changes in place (the harness's own edit).
            updates: &[],
            replaces: &[Replace {
                from: "[elastic_ip.nat]\n",
                to: "[elastic_ip.nat]\nnetwork_border_group = \"us-east-1-wl1-bos-wlz-1\"\n",
                field: "network_border_group",
                apply: false,
            }],
            drift: ec2_tag_drift(),
            vary: same,
            budget: one,
        }
    }

    pub fn log_group() -> Fixture {
        Fixture {
            kind: "log_group",
            toml: "[log_group.app]\nname = \"/conf/app\"\nretention_in_days = 7\n",
            address: "log_group.app",
            updates: &[Edit {
                from: "retention_in_days = 7",
                to: "retention_in_days = 14",
                field: "retention_in_days",
            }],
            replaces: &[Replace {
                from: "\"/conf/app\"",
                to: "\"/conf/app2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "retention_in_days",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_cloudwatchlogs::Client::new(&sdk(&url).await)
                            .put_retention_policy()
                            .log_group_name(id)
                            .retention_in_days(30)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("/conf/b{i}")),
            // One DescribeLogGroups per 50; tags from the stack tag index (one
            // GetResources per 100).
            budget: |n| n.div_ceil(50) + n.div_ceil(100),
        }
    }

    pub fn ecr_repository() -> Fixture {
        Fixture {
            kind: "ecr_repository",
            toml: r#"[ecr_repository.app]
name = "conf/app"
image_tag_mutability = "MUTABLE"
scan_on_push = false
keep_last_images = 5
"#,
            address: "ecr_repository.app",
            updates: &[
                Edit {
                    from: "scan_on_push = false",
                    to: "scan_on_push = true",
                    field: "scan_on_push",
                },
                Edit {
                    from: "\"MUTABLE\"",
                    to: "\"IMMUTABLE\"",
                    field: "image_tag_mutability",
                },
                Edit {
                    from: "keep_last_images = 5",
                    to: "keep_last_images = 10",
                    field: "keep_last_images",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf/app\"",
                    to: "\"conf/app2\"",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "scan_on_push",
                    to: "encryption_type = \"KMS\"\nscan_on_push",
                    field: "encryption_type",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "image_tag_mutability",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_ecr::Client::new(&sdk(&url).await)
                            .put_image_tag_mutability()
                            .repository_name(id)
                            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf/b{i}")),
            // One DescribeRepositories per 100; lifecycle policy per repository. moto's
            // Tagging API does not list repositories: the index (one GetResources)
            // misses them and each costs its own ListTagsForResource.
            budget: |n| 2 * n.div_ceil(100) + 2 * n,
        }
    }

    pub fn iam_role() -> Fixture {
        Fixture {
            kind: "iam_role",
            toml: r#"[iam_role.exec]
name = "conf-exec"
description = "one"
trusted_services = ["ecs-tasks.amazonaws.com"]
managed_policy_arns = []
max_session_duration = 3600
"#,
            address: "iam_role.exec",
            // The session length edit follows the description edit: UpdateRole
            // must keep the description it does not change.
            updates: &[
                Edit {
                    from: "description = \"one\"",
                    to: "description = \"two\"",
                    field: "description",
                },
                Edit {
                    from: "max_session_duration = 3600",
                    to: "max_session_duration = 7200",
                    field: "max_session_duration",
                },
                Edit {
                    from: "[\"ecs-tasks.amazonaws.com\"]",
                    to: "[\"ecs-tasks.amazonaws.com\", \"lambda.amazonaws.com\"]",
                    field: "trusted_services",
                },
                Edit {
                    from: "managed_policy_arns = []",
                    to: "managed_policy_arns = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]",
                    field: "managed_policy_arns",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf-exec\"",
                    to: "\"conf-exec2\"",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "description",
                    to: "path = \"/ecs/\"\ndescription",
                    field: "path",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "description",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_iam::Client::new(&sdk(&url).await)
                            .update_role_description()
                            .role_name(id)
                            .description("changed by hand")
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // ListRoles and GetAccountAuthorizationDetails for the whole account.
            budget: |_| 2,
        }
    }

    pub fn secret() -> Fixture {
        Fixture {
            kind: "secret",
            // A zero recovery window frees the name at once for the adoption step.
            toml: "[secret.db]\nname = \"conf/db\"\ndescription = \"one\"\nrecovery_window_in_days = 0\n",
            address: "secret.db",
            updates: &[Edit {
                from: "description = \"one\"",
                to: "description = \"two\"",
                field: "description",
            }],
            replaces: &[Replace {
                from: "\"conf/db\"",
                to: "\"conf/db2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "description",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_secretsmanager::Client::new(&sdk(&url).await)
                            .update_secret()
                            .secret_id(id)
                            .description("changed by hand")
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf/b{i}")),
            // One ListSecrets per 100 of the stack's secrets.
            budget: |n| n.div_ceil(100),
        }
    }

    pub fn secret_target_attachment() -> Fixture {
        Fixture {
            kind: "secret_target_attachment",
            // Ten more secrets for the budget copies, one attachment each.
            toml: r#"[secret.a]
name = "conf-att/a"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b]
name = "conf-att/b"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b0]
name = "conf-att/b0"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b1]
name = "conf-att/b1"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b2]
name = "conf-att/b2"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b3]
name = "conf-att/b3"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b4]
name = "conf-att/b4"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b5]
name = "conf-att/b5"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b6]
name = "conf-att/b6"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b7]
name = "conf-att/b7"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b8]
name = "conf-att/b8"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret.b9]
name = "conf-att/b9"
recovery_window_in_days = 0
generate = { template = { username = "app" }, key = "password" }

[secret_target_attachment.db]
secret_id = "${secret.a.arn}"
host = "db1.example"
port = 5432
engine = "postgres"
db_instance_identifier = "db1"
"#,
            address: "secret_target_attachment.db",
            updates: &[Edit {
                from: "host = \"db1.example\"",
                to: "host = \"db2.example\"",
                field: "host",
            }],
            replaces: &[Replace {
                from: "${secret.a.arn}",
                to: "${secret.b.arn}",
                field: "secret_id",
                apply: true,
            }],
            drift: Drift {
                field: "host",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let sm = aws_sdk_secretsmanager::Client::new(&sdk(&url).await);
                        let v = sm.get_secret_value().secret_id(&id).send().await.unwrap();
                        let mut j: serde_json::Value =
                            serde_json::from_str(v.secret_string().unwrap()).unwrap();
                        j["host"] = "changed.example".into();
                        sm.put_secret_value()
                            .secret_id(&id)
                            .secret_string(j.to_string())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "secret_id", format!("conf-att/b{i}")),
            // One BatchGetSecretValue per 20.
            budget: |n| n.div_ceil(20),
        }
    }

    pub fn db_subnet_group() -> Fixture {
        Fixture {
            kind: "db_subnet_group",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[db_subnet_group.db]
name = "conf-db"
description = "one"
subnet_ids = ["${subnet.a.id}", "${subnet.b.id}"]
"#,
            address: "db_subnet_group.db",
            // Tags only: moto's ModifyDBSubnetGroup deletes the group (design.md),
            // so description and subnet_ids cannot be updated in place on moto.
            updates: &[],
            replaces: &[Replace {
                from: "\"conf-db\"",
                to: "\"conf-db2\"",
                field: "name",
                apply: true,
            }],
            // Tags, since moto's ModifyDBSubnetGroup deletes the group (design.md).
            drift: Drift {
                field: "tags",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let rds = aws_sdk_rds::Client::new(&sdk(&url).await);
                        let g = rds.describe_db_subnet_groups().db_subnet_group_name(id);
                        let g = g.send().await.unwrap();
                        let arn = g.db_subnet_groups()[0].db_subnet_group_arn().unwrap();
                        let tag = aws_sdk_rds::types::Tag::builder().key("Owner").value("x");
                        rds.add_tags_to_resource()
                            .resource_name(arn)
                            .tags(tag.build())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // One DescribeDBSubnetGroups per 100. moto's Tagging API does not list
            // subnet groups: the index (one GetResources) misses them and each costs
            // its own ListTagsForResource.
            budget: |n| 2 * n.div_ceil(100) + n,
        }
    }

    pub fn ecs_cluster() -> Fixture {
        Fixture {
            kind: "ecs_cluster",
            toml:
                "[ecs_cluster.main]\nname = \"conf-cluster\"\ncontainer_insights = \"disabled\"\n",
            address: "ecs_cluster.main",
            updates: &[Edit {
                from: "\"disabled\"",
                to: "\"enabled\"",
                field: "container_insights",
            }],
            replaces: &[Replace {
                from: "\"conf-cluster\"",
                to: "\"conf-cluster2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "container_insights",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_ecs::types::{ClusterSetting, ClusterSettingName};
                        let off = ClusterSetting::builder()
                            .name(ClusterSettingName::ContainerInsights)
                            .value("disabled")
                            .build();
                        // moto answers UpdateClusterSettings with a 500; UpdateCluster works.
                        aws_sdk_ecs::Client::new(&sdk(&url).await)
                            .update_cluster()
                            .cluster(id)
                            .settings(off)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // DescribeClusters takes 100 clusters, tags included.
            budget: |n| n.div_ceil(100),
        }
    }

    pub fn target_group() -> Fixture {
        Fixture {
            kind: "target_group",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[target_group.app]
name = "conf-tg"
port = 80
protocol = "HTTP"
vpc_id = "${vpc.main.id}"
deregistration_delay = 300
health_check = { path = "/" }
"#,
            address: "target_group.app",
            updates: &[
                Edit {
                    from: "deregistration_delay = 300",
                    to: "deregistration_delay = 60",
                    field: "deregistration_delay",
                },
                Edit {
                    from: "path = \"/\"",
                    to: "path = \"/health\"",
                    field: "health_check",
                },
            ],
            replaces: &[
                Replace {
                    from: "port = 80",
                    to: "port = 8080",
                    field: "port",
                    apply: true,
                },
                Replace {
                    from: "\"conf-tg\"",
                    to: "\"conf-tg2\"",
                    field: "name",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "deregistration_delay",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute;
                        let delay = TargetGroupAttribute::builder()
                            .key("deregistration_delay.timeout_seconds")
                            .value("10")
                            .build();
                        aws_sdk_elasticloadbalancingv2::Client::new(&sdk(&url).await)
                            .modify_target_group_attributes()
                            .target_group_arn(id)
                            .attributes(delay)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // DescribeTargetGroups per 20; tags from the stack tag index (one
            // GetResources per 100); attributes one group a call.
            budget: |n| n.div_ceil(20) + n.div_ceil(100) + n,
        }
    }

    pub fn nat_gateway() -> Fixture {
        Fixture {
            kind: "nat_gateway",
            // Private: moto leaves a deleted gateway's address associated (AlreadyAssociated
            // on the next create), which the adoption and budget steps would trip on.
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[elastic_ip.nat]

[nat_gateway.main]
subnet_id = "${subnet.a.id}"
connectivity_type = "private"
"#,
            address: "nat_gateway.main",
            // Every field forces a replacement: tags are all a gateway changes in place.
            updates: &[],
            replaces: &[
                Replace {
                    from: "${subnet.a.id}",
                    to: "${subnet.b.id}",
                    field: "subnet_id",
                    apply: true,
                },
                Replace {
                    from: "\"private\"",
                    to: "\"public\"\nallocation_id = \"${elastic_ip.nat.id}\"",
                    field: "connectivity_type",
                    apply: false,
                },
            ],
            // Tags, since every field forces a replacement.
            drift: ec2_tag_drift(),
            vary: same,
            budget: one,
        }
    }

    pub fn security_group_rule() -> Fixture {
        Fixture {
            kind: "security_group_rule",
            // No tags: the harness skips its tag steps and adopts the rule by content.
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[security_group.web]
name = "conf-web"
vpc_id = "${vpc.main.id}"

[security_group_rule.https]
security_group_id = "${security_group.web.id}"
type = "ingress"
protocol = "tcp"
from_port = 443
to_port = 443
cidr_block = "10.0.0.0/8"
description = "one"
"#,
            address: "security_group_rule.https",
            // Every field forces a replacement: nothing changes in place.
            updates: &[],
            replaces: &[
                Replace {
                    from: "from_port = 443\nto_port = 443",
                    to: "from_port = 8443\nto_port = 8443",
                    field: "from_port",
                    apply: true,
                },
                Replace {
                    from: "\"10.0.0.0/8\"",
                    to: "\"10.1.0.0/16\"",
                    field: "cidr_block",
                    apply: true,
                },
                // Plan only: the id leaves out the description, so it stays the same.
                Replace {
                    from: "\"one\"",
                    to: "\"two\"",
                    field: "description",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "description",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_ec2::types::IpRange;
                        let [group, _, proto, from, to, cidr] =
                            id.split('|').collect::<Vec<_>>()[..]
                        else {
                            panic!("rule id {id}")
                        };
                        let rule = IpPermission::builder()
                            .ip_protocol(proto)
                            .from_port(from.parse().unwrap())
                            .to_port(to.parse().unwrap())
                            .ip_ranges(
                                IpRange::builder()
                                    .cidr_ip(cidr)
                                    .description("by hand")
                                    .build(),
                            )
                            .build();
                        ec2(&url)
                            .await
                            .update_security_group_rule_descriptions_ingress()
                            .group_id(group)
                            .ip_permissions(rule)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| {
                f.insert("from_port".into(), Value::Int(9000 + i as i64));
                f.insert("to_port".into(), Value::Int(9000 + i as i64));
            },
            // One DescribeSecurityGroups for every rule of the group.
            budget: one,
        }
    }

    /// A VPC with two subnets in two zones and two load balancers in them, for
    /// the ELBv2 kinds that hang off a load balancer.
    macro_rules! albs {
        () => {
            r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[load_balancer.web]
name = "conf-web"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]

[load_balancer.other]
name = "conf-other"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]

[target_group.app]
name = "conf-tg"
port = 80
protocol = "HTTP"
vpc_id = "${vpc.main.id}"

[certificate.web]
domain_name = "conf.example.com"
"#
        };
    }

    async fn elb(url: &str) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&sdk(url).await)
    }

    pub fn listener() -> Fixture {
        Fixture {
            kind: "listener",
            toml: concat!(
                albs!(),
                r#"
[listener.http]
load_balancer_arn = "${load_balancer.web.arn}"
port = 8000
protocol = "HTTP"
default_action = { type = "forward", target_group_arn = "${target_group.app.arn}" }
"#
            ),
            address: "listener.http",
            updates: &[
                Edit {
                    from: "port = 8000",
                    to: "port = 8080",
                    field: "port",
                },
                Edit {
                    from: "{ type = \"forward\", target_group_arn = \"${target_group.app.arn}\" }",
                    to: "{ type = \"fixed-response\", status_code = \"503\", content_type = \"text/plain\", message_body = \"down\" }",
                    field: "default_action",
                },
                Edit {
                    from: "protocol = \"HTTP\"\ndefault_action",
                    to: "protocol = \"HTTPS\"\nssl_policy = \"ELBSecurityPolicy-TLS13-1-2-2021-06\"\n\
                         certificate_arn = \"${certificate.web.arn}\"\ndefault_action",
                    field: "protocol",
                },
            ],
            replaces: &[Replace {
                from: "${load_balancer.web.arn}",
                to: "${load_balancer.other.arn}",
                field: "load_balancer_arn",
                apply: true,
            }],
            drift: Drift {
                field: "default_action",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_elasticloadbalancingv2::types::*;
                        let fixed = FixedResponseActionConfig::builder()
                            .status_code("404")
                            .content_type("text/plain")
                            .build();
                        let action = Action::builder()
                            .r#type(ActionTypeEnum::FixedResponse)
                            .fixed_response_config(fixed)
                            .build();
                        elb(&url)
                            .await
                            .modify_listener()
                            .listener_arn(id)
                            .default_actions(action)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // A load balancer takes one listener a port.
            vary: |f, i| {
                f.insert("port".into(), Value::Int(9000 + i as i64));
            },
            // DescribeListeners and DescribeTags per 20: moto's Tagging API does not
            // list listeners, so the index (one GetResources) misses them.
            budget: |n| 2 * n.div_ceil(20) + n.div_ceil(100),
        }
    }

    pub fn load_balancer() -> Fixture {
        Fixture {
            kind: "load_balancer",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[subnet.c]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.3.0/24"
availability_zone = "us-east-1c"

[security_group.alb]
name = "conf-alb"
vpc_id = "${vpc.main.id}"

[load_balancer.web]
name = "conf-web"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]
security_groups = []
idle_timeout = 60
drop_invalid_header_fields = false
"#,
            address: "load_balancer.web",
            // Deletion protection is left alone: on, it would stop the replacements and destroy.
            updates: &[
                Edit {
                    from: "idle_timeout = 60",
                    to: "idle_timeout = 120",
                    field: "idle_timeout",
                },
                Edit {
                    from: "drop_invalid_header_fields = false",
                    to: "drop_invalid_header_fields = true",
                    field: "drop_invalid_header_fields",
                },
                Edit {
                    from: "\"${subnet.b.id}\"]",
                    to: "\"${subnet.b.id}\", \"${subnet.c.id}\"]",
                    field: "subnets",
                },
                Edit {
                    from: "security_groups = []",
                    to: "security_groups = [\"${security_group.alb.id}\"]",
                    field: "security_groups",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf-web\"",
                    to: "\"conf-web2\"",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "subnets",
                    to: "scheme = \"internal\"\nsubnets",
                    field: "scheme",
                    apply: false,
                },
                // No load_balancer_type: a network one refuses the ALB attributes declared here.
            ],
            drift: Drift {
                field: "idle_timeout",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute;
                        let idle = LoadBalancerAttribute::builder()
                            .key("idle_timeout.timeout_seconds")
                            .value("30")
                            .build();
                        elb(&url)
                            .await
                            .modify_load_balancer_attributes()
                            .load_balancer_arn(id)
                            .attributes(idle)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // DescribeLoadBalancers per 20; tags from the stack tag index (one
            // GetResources per 100); attributes one a call.
            budget: |n| n.div_ceil(20) + n.div_ceil(100) + n,
        }
    }

    async fn ecs(url: &str) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&sdk(url).await)
    }

    pub fn ecs_task_definition() -> Fixture {
        Fixture {
            kind: "ecs_task_definition",
            // Containers inline: the harness's tags line would land in a [[containers]] table.
            toml: r#"[ecs_task_definition.app]
family = "conf-app"
cpu = "256"
memory = "512"
network_mode = "awsvpc"
requires_compatibilities = ["FARGATE"]
containers = [{ name = "app", image = "nginx:1.27", essential = true, port_mappings = [{ container_port = 80, protocol = "tcp" }] }]
"#,
            address: "ecs_task_definition.app",
            // Revisions are immutable: tags are all that changes in place.
            updates: &[],
            replaces: &[
                Replace {
                    from: "\"nginx:1.27\"",
                    to: "\"nginx:1.28\"",
                    field: "containers",
                    apply: true,
                },
                Replace {
                    from: "cpu = \"256\"\nmemory = \"512\"",
                    to: "cpu = \"512\"\nmemory = \"1024\"",
                    field: "cpu",
                    apply: true,
                },
                Replace {
                    from: "\"conf-app\"",
                    to: "\"conf-app2\"",
                    field: "family",
                    apply: false,
                },
            ],
            // Tags, since a revision cannot be changed otherwise.
            drift: Drift {
                field: "tags",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let tag = aws_sdk_ecs::types::Tag::builder().key("Owner").value("x");
                        ecs(&url)
                            .await
                            .tag_resource()
                            .resource_arn(id)
                            .tags(tag.build())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "family", format!("conf-b{i}")),
            // DescribeTaskDefinition takes one ARN a call, tags included.
            budget: |n| n,
        }
    }

    pub fn ecs_service() -> Fixture {
        Fixture {
            kind: "ecs_service",
            toml: r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[security_group.app]
name = "conf-app"
vpc_id = "${vpc.main.id}"

[ecs_cluster.main]
name = "conf-main"

[ecs_cluster.other]
name = "conf-other"

[ecs_task_definition.v1]
family = "conf-app"
cpu = "256"
memory = "512"
network_mode = "awsvpc"
requires_compatibilities = ["FARGATE"]
containers = [{ name = "app", image = "nginx:1.27", essential = true }]

[ecs_task_definition.v2]
family = "conf-app"
cpu = "256"
memory = "512"
network_mode = "awsvpc"
requires_compatibilities = ["FARGATE"]
containers = [{ name = "app", image = "nginx:1.28", essential = true }]

[ecs_service.app]
name = "conf-app"
cluster = "${ecs_cluster.main.arn}"
task_definition = "${ecs_task_definition.v1.arn}"
desired_count = 1
subnets = ["${subnet.a.id}"]
security_groups = ["${security_group.app.id}"]
enable_execute_command = false
"#,
            address: "ecs_service.app",
            updates: &[
                Edit {
                    from: "desired_count = 1",
                    to: "desired_count = 2",
                    field: "desired_count",
                },
                Edit {
                    from: "${ecs_task_definition.v1.arn}",
                    to: "${ecs_task_definition.v2.arn}",
                    field: "task_definition",
                },
                Edit {
                    from: "[\"${subnet.a.id}\"]",
                    to: "[\"${subnet.a.id}\", \"${subnet.b.id}\"]",
                    field: "subnets",
                },
                Edit {
                    from: "enable_execute_command = false",
                    to: "enable_execute_command = true",
                    field: "enable_execute_command",
                },
                Edit {
                    from: "desired_count = 2",
                    to: "desired_count = 2\ndeployment_circuit_breaker = { enable = true, rollback = true }",
                    field: "deployment_circuit_breaker",
                },
            ],
            replaces: &[
                Replace {
                    from: "name = \"conf-app\"\ncluster",
                    to: "name = \"conf-app2\"\ncluster",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "${ecs_cluster.main.arn}",
                    to: "${ecs_cluster.other.arn}",
                    field: "cluster",
                    apply: true,
                },
            ],
            drift: Drift {
                field: "desired_count",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        // arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME
                        let cluster = id.rsplit('/').nth(1).unwrap().to_string();
                        ecs(&url)
                            .await
                            .update_service()
                            .cluster(cluster)
                            .service(id)
                            .desired_count(5)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // DescribeServices takes 10 services of one cluster, tags included.
            budget: |n| n.div_ceil(10),
        }
    }

    pub fn certificate() -> Fixture {
        Fixture {
            kind: "certificate",
            toml: "[certificate.web]\ndomain_name = \"conf.example.com\"\nsubject_alternative_names = []\n",
            address: "certificate.web",
            // Tags are all a certificate changes in place (the harness's own edit).
            updates: &[],
            replaces: &[
                Replace {
                    from: "\"conf.example.com\"",
                    to: "\"conf2.example.com\"",
                    field: "domain_name",
                    apply: true,
                },
                // Applied: the new certificate has the old one's name and tags, and
                // the create must request a new one rather than adopt the old.
                Replace {
                    from: "subject_alternative_names = []",
                    to: "subject_alternative_names = [\"www.example.com\"]",
                    field: "subject_alternative_names",
                    apply: true,
                },
                Replace {
                    from: "domain_name",
                    to: "key_algorithm = \"EC_prime256v1\"\ndomain_name",
                    field: "key_algorithm",
                    apply: false,
                },
                Replace {
                    from: "domain_name",
                    to: "validation_method = \"EMAIL\"\ndomain_name",
                    field: "validation_method",
                    apply: false,
                },
            ],
            // Tags, since every other field forces a replacement.
            drift: Drift {
                field: "tags",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let tag = aws_sdk_acm::types::Tag::builder().key("Owner").value("x");
                        aws_sdk_acm::Client::new(&sdk(&url).await)
                            .add_tags_to_certificate()
                            .certificate_arn(id)
                            .tags(tag.build().unwrap())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "domain_name", format!("b{i}.example.com")),
            // One ListCertificates page; DescribeCertificate one certificate a call;
            // tags from the stack tag index (one GetResources per 100).
            budget: |n| 1 + n + n.div_ceil(100),
        }
    }

    pub fn web_acl() -> Fixture {
        Fixture {
            kind: "web_acl",
            toml: r#"[web_acl.app]
name = "conf-acl"
description = "one"
default_action = "allow"
visibility = { cloudwatch_metrics_enabled = true, sampled_requests_enabled = true, metric_name = "conf" }
rules = [
  { name = "common", priority = 1, managed_rule_group = { vendor = "AWS", name = "AWSManagedRulesCommonRuleSet" } },
]
"#,
            address: "web_acl.app",
            updates: &[
                Edit {
                    from: "description = \"one\"",
                    to: "description = \"two\"",
                    field: "description",
                },
                Edit {
                    from: "\"allow\"",
                    to: "\"block\"",
                    field: "default_action",
                },
                Edit {
                    from: "rules = [\n",
                    to: "rules = [\n  { name = \"rate\", priority = 2, rate_limit = { limit = 1000 } },\n",
                    field: "rules",
                },
                Edit {
                    from: "metric_name = \"conf\"",
                    to: "metric_name = \"conf2\"",
                    field: "visibility",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf-acl\"",
                    to: "\"conf-acl2\"",
                    field: "name",
                    apply: true,
                },
                Replace {
                    from: "description",
                    to: "scope = \"CLOUDFRONT\"\ndescription",
                    field: "scope",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "description",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_wafv2::types::Scope;
                        let waf = aws_sdk_wafv2::Client::new(&sdk(&url).await);
                        // arn:aws:wafv2:REGION:ACCOUNT:regional/webacl/NAME/ID
                        let mut parts = id.rsplit('/');
                        let (acl_id, name) = (parts.next().unwrap(), parts.next().unwrap());
                        let got = waf.get_web_acl().scope(Scope::Regional).name(name).id(acl_id);
                        let got = got.send().await.unwrap();
                        let acl = got.web_acl().unwrap();
                        waf.update_web_acl()
                            .scope(Scope::Regional)
                            .name(name)
                            .id(acl_id)
                            .lock_token(got.lock_token().unwrap())
                            .description("changed by hand")
                            .set_default_action(acl.default_action().cloned())
                            .set_rules(Some(acl.rules().to_vec()))
                            .set_visibility_config(acl.visibility_config().cloned())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-b{i}")),
            // One ListWebACLs page; GetWebACL and tags one ACL a call: moto's Tagging
            // API does not list web ACLs, so the index (one GetResources) misses them.
            budget: |n| 1 + 2 * n + n.div_ceil(100),
        }
    }

    pub fn web_acl_association() -> Fixture {
        Fixture {
            kind: "web_acl_association",
            // No tags: the harness skips its tag steps and adopts the association by content.
            toml: concat!(
                albs!(),
                r#"
[web_acl.one]
name = "conf-one"
visibility = { cloudwatch_metrics_enabled = false, sampled_requests_enabled = false, metric_name = "one" }

[web_acl.two]
name = "conf-two"
visibility = { cloudwatch_metrics_enabled = false, sampled_requests_enabled = false, metric_name = "two" }

[web_acl_association.web]
web_acl_arn = "${web_acl.one.arn}"
resource_arn = "${load_balancer.web.arn}"
"#
            ),
            address: "web_acl_association.web",
            // Both fields force a replacement: nothing changes in place.
            updates: &[],
            replaces: &[
                Replace {
                    from: "${web_acl.one.arn}",
                    to: "${web_acl.two.arn}",
                    field: "web_acl_arn",
                    apply: true,
                },
                Replace {
                    from: "${load_balancer.web.arn}",
                    to: "${load_balancer.other.arn}",
                    field: "resource_arn",
                    apply: true,
                },
            ],
            // Disassociated by hand, the association is gone: planned as a create for drift.
            drift: Drift {
                field: "web_acl_arn",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let resource = id.split('|').nth(1).unwrap().to_string();
                        aws_sdk_wafv2::Client::new(&sdk(&url).await)
                            .disassociate_web_acl()
                            .resource_arn(resource)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // A resource holds one web ACL: the copies protect other load balancers.
            vary: |f, i| {
                let lb = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/conf-b{i}/0");
                set(f, "resource_arn", lb);
            },
            // GetWebACLForResource answers one resource a call.
            budget: |n| n,
        }
    }

    pub fn listener_rule() -> Fixture {
        Fixture {
            kind: "listener_rule",
            toml: concat!(
                albs!(),
                r#"
[listener.http]
load_balancer_arn = "${load_balancer.web.arn}"
port = 8000
protocol = "HTTP"
default_action = { type = "fixed-response", status_code = "404", content_type = "text/plain" }

[listener.alt]
load_balancer_arn = "${load_balancer.web.arn}"
port = 8001
protocol = "HTTP"
default_action = { type = "fixed-response", status_code = "404", content_type = "text/plain" }

[listener_rule.api]
listener_arn = "${listener.http.arn}"
priority = 10
conditions = { path_pattern = ["/api/*"] }
action = { type = "forward", target_group_arn = "${target_group.app.arn}" }
"#
            ),
            address: "listener_rule.api",
            updates: &[
                Edit {
                    from: "priority = 10",
                    to: "priority = 20",
                    field: "priority",
                },
                Edit {
                    from: "[\"/api/*\"] }",
                    to: "[\"/api/*\"], host_header = [\"api.example.com\"] }",
                    field: "conditions",
                },
                Edit {
                    from: "action = { type = \"forward\", target_group_arn = \"${target_group.app.arn}\" }",
                    to: "action = { type = \"fixed-response\", status_code = \"503\", content_type = \"text/plain\" }",
                    field: "action",
                },
            ],
            replaces: &[Replace {
                from: "${listener.http.arn}",
                to: "${listener.alt.arn}",
                field: "listener_arn",
                apply: true,
            }],
            drift: Drift {
                field: "priority",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_elasticloadbalancingv2::types::RulePriorityPair;
                        let pair = RulePriorityPair::builder().rule_arn(id).priority(99).build();
                        elb(&url)
                            .await
                            .set_rule_priorities()
                            .rule_priorities(pair)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // A listener takes one rule a priority.
            vary: |f, i| {
                f.insert("priority".into(), Value::Int(100 + i as i64));
            },
            // DescribeRules and DescribeTags per 20: moto's Tagging API does not list
            // listener rules, so the index (one GetResources) misses them.
            budget: |n| 2 * n.div_ceil(20) + n.div_ceil(100),
        }
    }

    async fn rds(url: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&sdk(url).await)
    }

    pub fn db_instance() -> Fixture {
        Fixture {
            kind: "db_instance",
            toml: r#"[db_instance.db]
identifier = "conf-db"
engine = "postgres"
instance_class = "db.t4g.micro"
allocated_storage = 20
master_username = "conf"
manage_master_user_password = true
backup_retention_period = 1
copy_tags_to_snapshot = false
skip_final_snapshot = true
"#,
            address: "db_instance.db",
            updates: &[
                Edit {
                    from: "\"db.t4g.micro\"",
                    to: "\"db.t4g.small\"",
                    field: "instance_class",
                },
                Edit {
                    from: "allocated_storage = 20",
                    to: "allocated_storage = 30",
                    field: "allocated_storage",
                },
                Edit {
                    from: "backup_retention_period = 1",
                    to: "backup_retention_period = 7",
                    field: "backup_retention_period",
                },
                Edit {
                    from: "copy_tags_to_snapshot = false",
                    to: "copy_tags_to_snapshot = true",
                    field: "copy_tags_to_snapshot",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf-db\"",
                    to: "\"conf-db2\"",
                    field: "identifier",
                    apply: true,
                },
                Replace {
                    from: "master_username",
                    to: "db_name = \"app\"\nmaster_username",
                    field: "db_name",
                    apply: false,
                },
                Replace {
                    from: "master_username",
                    to: "storage_encrypted = true\nmaster_username",
                    field: "storage_encrypted",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "backup_retention_period",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        rds(&url)
                            .await
                            .modify_db_instance()
                            .db_instance_identifier(id)
                            .backup_retention_period(3)
                            .apply_immediately(true)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "identifier", format!("conf-b{i}")),
            // DescribeDBInstances takes 100 identifiers, tags included.
            budget: |n| n.div_ceil(100),
        }
    }

    pub fn db_cluster() -> Fixture {
        Fixture {
            kind: "db_cluster",
            // No member instance: the cluster alone is the kind under test.
            toml: r#"[db_cluster.main]
cluster_identifier = "conf-cluster"
engine = "aurora-postgresql"
master_username = "conf"
manage_master_user_password = true
serverlessv2_scaling = { min_capacity = 0.5, max_capacity = 8 }
backup_retention_period = 1
copy_tags_to_snapshot = false
skip_final_snapshot = true
"#,
            address: "db_cluster.main",
            // Deletion protection is left alone: on, it would stop the replacement and destroy.
            updates: &[
                Edit {
                    from: "max_capacity = 8",
                    to: "max_capacity = 16",
                    field: "serverlessv2_scaling",
                },
                Edit {
                    from: "backup_retention_period = 1",
                    to: "backup_retention_period = 7",
                    field: "backup_retention_period",
                },
                Edit {
                    from: "copy_tags_to_snapshot = false",
                    to: "copy_tags_to_snapshot = true",
                    field: "copy_tags_to_snapshot",
                },
            ],
            replaces: &[
                Replace {
                    from: "\"conf-cluster\"",
                    to: "\"conf-cluster2\"",
                    field: "cluster_identifier",
                    apply: true,
                },
                Replace {
                    from: "master_username",
                    to: "database_name = \"app\"\nmaster_username",
                    field: "database_name",
                    apply: false,
                },
                Replace {
                    from: "master_username = \"conf\"",
                    to: "master_username = \"other\"",
                    field: "master_username",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "backup_retention_period",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let rds = rds(&url).await;
                        rds.modify_db_cluster()
                            .db_cluster_identifier(&id)
                            .backup_retention_period(3)
                            .apply_immediately(true)
                            .send()
                            .await
                            .unwrap();
                        // Not drift: moto's DeleteDBCluster keeps the automated snapshot
                        // (rds:ID-MINUTE), so the adoption step's create under the same
                        // identifier within the minute would collide with it.
                        let snaps = rds
                            .describe_db_cluster_snapshots()
                            .db_cluster_identifier(&id);
                        let snaps = snaps.snapshot_type("automated").send().await.unwrap();
                        for snap in snaps.db_cluster_snapshots() {
                            let name = snap.db_cluster_snapshot_identifier().unwrap();
                            let del = rds.delete_db_cluster_snapshot();
                            del.db_cluster_snapshot_identifier(name)
                                .send()
                                .await
                                .unwrap();
                        }
                    })
                },
            },
            vary: |f, i| set(f, "cluster_identifier", format!("conf-b{i}")),
            // DescribeDBClusters takes 100 identifiers, tags included.
            budget: |n| n.div_ceil(100),
        }
    }

    pub fn kms_key() -> Fixture {
        Fixture {
            kind: "kms_key",
            toml: r#"[kms_key.data]
description = "conformance data key"
enable_key_rotation = false
deletion_window_in_days = 7
"#,
            address: "kms_key.data",
            updates: &[
                Edit {
                    from: "\"conformance data key\"",
                    to: "\"conformance data key, renamed\"",
                    field: "description",
                },
                Edit {
                    from: "enable_key_rotation = false",
                    to: "enable_key_rotation = true",
                    field: "enable_key_rotation",
                },
                Edit {
                    from: "deletion_window_in_days = 7",
                    to: r#"deletion_window_in_days = 7
policy = '{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}'"#,
                    field: "policy",
                },
            ],
            replaces: &[
                Replace {
                    from: "deletion_window_in_days = 7",
                    to: "deletion_window_in_days = 7\nmulti_region = true",
                    field: "multi_region",
                    apply: true,
                },
                Replace {
                    from: "enable_key_rotation = true",
                    to: "key_usage = \"SIGN_VERIFY\"\nkey_spec = \"RSA_2048\"",
                    field: "key_spec",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "enable_key_rotation",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_kms::Client::new(&sdk(&url).await)
                            .disable_key_rotation()
                            .key_id(id)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: same,
            // DescribeKey, GetKeyRotationStatus and GetKeyPolicy each key (the
            // policy is declared by then); tags from the stack tag index.
            budget: |n| 3 * n + n.div_ceil(100),
        }
    }

    pub fn kms_alias() -> Fixture {
        Fixture {
            kind: "kms_alias",
            // No tags: the harness skips its tag steps and adopts the alias by content.
            toml: r#"[kms_key.one]
description = "one"
deletion_window_in_days = 7

[kms_key.two]
description = "two"
deletion_window_in_days = 7

[kms_alias.data]
name = "alias/conf-data"
target_key_id = "${kms_key.one.arn}"
"#,
            address: "kms_alias.data",
            updates: &[Edit {
                from: "${kms_key.one.arn}",
                to: "${kms_key.two.key_id}",
                field: "target_key_id",
            }],
            replaces: &[Replace {
                from: "\"alias/conf-data\"",
                to: "\"alias/conf-data2\"",
                field: "name",
                apply: true,
            }],
            // Deleted by hand, the alias is gone: planned as a create for drift.
            drift: Drift {
                field: "target_key_id",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_kms::Client::new(&sdk(&url).await)
                            .delete_alias()
                            .alias_name(id)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("alias/conf-b{i}")),
            // One ListAliases listing, 100 a page, AWS's own aliases included.
            budget: |n| (n + 20).div_ceil(100),
        }
    }

    pub fn s3_bucket() -> Fixture {
        Fixture {
            kind: "s3_bucket",
            toml: r#"[s3_bucket.data]
name = "conf-bucket-data"
versioning = "Enabled"
lifecycle_rules = [{ id = "logs", prefix = "logs/", expiration_days = 90 }]
"#,
            address: "s3_bucket.data",
            updates: &[
                Edit {
                    from: "versioning = \"Enabled\"",
                    to: "versioning = \"Suspended\"",
                    field: "versioning",
                },
                Edit {
                    from: "expiration_days = 90",
                    to: "expiration_days = 120",
                    field: "lifecycle_rules",
                },
                Edit {
                    from: "versioning = \"Suspended\"",
                    to: "versioning = \"Suspended\"\nblock_public_policy = false",
                    field: "block_public_policy",
                },
                Edit {
                    from: "block_public_policy = false",
                    to: r#"block_public_policy = false
policy = '{"Version":"2012-10-17","Statement":[{"Sid":"read","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::conf-bucket-data/*"}]}'"#,
                    field: "policy",
                },
            ],
            replaces: &[Replace {
                from: "name = \"conf-bucket-data\"",
                to: "name = \"conf-bucket-data2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "sse_algorithm",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let conf = aws_sdk_s3::config::Builder::from(&sdk(&url).await)
                            .force_path_style(true)
                            .build();
                        aws_sdk_s3::Client::from_conf(conf)
                            .delete_bucket_encryption()
                            .bucket(id)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-bucket-b{i}")),
            // One ListBuckets for all; GetBucketEncryption, GetPublicAccessBlock
            // and GetBucketOwnershipControls each bucket; tags from the stack
            // tag index. Declared optional settings are read after observe.
            budget: |n| 1 + 3 * n + n.div_ceil(100),
        }
    }

    pub fn dynamodb_table() -> Fixture {
        Fixture {
            kind: "dynamodb_table",
            toml: r#"[dynamodb_table.orders]
name = "conf-orders"
hash_key = "pk"
range_key = "sk"
attributes = [{ name = "pk", type = "S" }, { name = "sk", type = "S" }]
point_in_time_recovery = false
"#,
            address: "dynamodb_table.orders",
            updates: &[
                Edit {
                    from: "point_in_time_recovery = false",
                    to: "point_in_time_recovery = true",
                    field: "point_in_time_recovery",
                },
                Edit {
                    from: r#"{ name = "sk", type = "S" }]"#,
                    to: r#"{ name = "sk", type = "S" }, { name = "status", type = "S" }]
global_secondary_indexes = [{ name = "by-status", hash_key = "status", projection_type = "KEYS_ONLY" }]"#,
                    field: "global_secondary_indexes",
                },
            ],
            replaces: &[
                // A table's name is its id: only a new name can be replaced
                // under a new id (and made before the old one is deleted).
                Replace {
                    from: r#"name = "conf-orders""#,
                    to: r#"name = "conf-orders-2""#,
                    field: "name",
                    apply: true,
                },
                // `sk` stays a key (of an index): an unused attribute is refused.
                Replace {
                    from: r#"range_key = "sk""#,
                    to: r#"range_key = "status"
local_secondary_indexes = [{ name = "by-sk", range_key = "sk" }]"#,
                    field: "range_key",
                    apply: false,
                },
                Replace {
                    from: "point_in_time_recovery = true",
                    to: r#"point_in_time_recovery = true
local_secondary_indexes = [{ name = "by-sk-status", range_key = "status" }]"#,
                    field: "local_secondary_indexes",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "point_in_time_recovery",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_dynamodb::types::PointInTimeRecoverySpecification;
                        let spec = PointInTimeRecoverySpecification::builder()
                            .point_in_time_recovery_enabled(false)
                            .build()
                            .unwrap();
                        aws_sdk_dynamodb::Client::new(&sdk(&url).await)
                            .update_continuous_backups()
                            .table_name(id)
                            .point_in_time_recovery_specification(spec)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-orders-b{i}")),
            // DescribeTable and DescribeContinuousBackups each table; tags
            // from the stack tag index (one GetResources a 100 tables).
            budget: |n| 2 * n + n.div_ceil(100),
        }
    }

    /// Moto refuses an ECS target whose service does not exist, so both
    /// autoscaling fixtures stand on a real (emulated) service.
    macro_rules! ecs_services {
        () => {
            r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[security_group.app]
name = "conf-app"
vpc_id = "${vpc.main.id}"

[ecs_cluster.main]
name = "conf-main"

[ecs_task_definition.app]
family = "conf-app"
cpu = "256"
memory = "512"
containers = [{ name = "app", image = "nginx:1.27" }]

[ecs_service.api]
name = "api"
cluster = "${ecs_cluster.main.arn}"
task_definition = "${ecs_task_definition.app.arn}"
desired_count = 2
subnets = ["${subnet.a.id}"]
security_groups = ["${security_group.app.id}"]

[ecs_service.worker]
name = "worker"
cluster = "${ecs_cluster.main.arn}"
task_definition = "${ecs_task_definition.app.arn}"
subnets = ["${subnet.a.id}"]
security_groups = ["${security_group.app.id}"]
"#
        };
    }

    /// The target and policy of an id (`NAMESPACE/RESOURCE_ID/DIMENSION[/NAME]`).
    fn autoscaling_key(id: &str) -> (String, String, String) {
        let (ns, rest) = id.split_once('/').unwrap();
        let at = rest.find("/ecs:").unwrap();
        let dim = rest[at + 1..].split('/').next().unwrap();
        (ns.to_string(), rest[..at].to_string(), dim.to_string())
    }

    pub fn appautoscaling_target() -> Fixture {
        Fixture {
            kind: "appautoscaling_target",
            toml: concat!(
                ecs_services!(),
                r#"
[appautoscaling_target.api]
resource_id = "service/${ecs_cluster.main.name}/${ecs_service.api.name}"
min_capacity = 1
max_capacity = 4
"#
            ),
            address: "appautoscaling_target.api",
            updates: &[
                Edit {
                    from: "min_capacity = 1",
                    to: "min_capacity = 2",
                    field: "min_capacity",
                },
                Edit {
                    from: "max_capacity = 4",
                    to: "max_capacity = 8",
                    field: "max_capacity",
                },
            ],
            replaces: &[Replace {
                from: "${ecs_service.api.name}",
                to: "${ecs_service.worker.name}",
                field: "resource_id",
                apply: true,
            }],
            drift: Drift {
                field: "max_capacity",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_applicationautoscaling::types::{
                            ScalableDimension, ServiceNamespace,
                        };
                        let (ns, rid, dim) = autoscaling_key(&id);
                        aws_sdk_applicationautoscaling::Client::new(&sdk(&url).await)
                            .register_scalable_target()
                            .service_namespace(ServiceNamespace::from(ns.as_str()))
                            .resource_id(rid)
                            .scalable_dimension(ScalableDimension::from(dim.as_str()))
                            .max_capacity(9)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            // Each copy needs a key of its own; moto checks that an ECS
            // service exists but not a DynamoDB table, so the copies scale
            // tables (still one namespace: one call).
            vary: |f, i| {
                set(f, "service_namespace", "dynamodb".into());
                set(f, "resource_id", format!("table/conf-b{i}"));
                set(
                    f,
                    "scalable_dimension",
                    "dynamodb:table:ReadCapacityUnits".into(),
                );
            },
            // One DescribeScalableTargets per namespace per 50 targets.
            budget: |n| n.div_ceil(50),
        }
    }

    pub fn appautoscaling_policy() -> Fixture {
        Fixture {
            kind: "appautoscaling_policy",
            toml: concat!(
                ecs_services!(),
                r#"
[appautoscaling_target.api]
resource_id = "service/${ecs_cluster.main.name}/${ecs_service.api.name}"
min_capacity = 1
max_capacity = 4

[appautoscaling_policy.cpu]
name = "conf-cpu"
resource_id = "${appautoscaling_target.api.resource_id}"
target_tracking = { target_value = 70, predefined_metric_type = "ECSServiceAverageCPUUtilization", scale_out_cooldown = 60 }
"#
            ),
            address: "appautoscaling_policy.cpu",
            updates: &[
                Edit {
                    from: "target_value = 70",
                    to: "target_value = 55.5",
                    field: "target_tracking",
                },
                Edit {
                    from: "scale_out_cooldown = 60",
                    to: "scale_out_cooldown = 60, scale_in_cooldown = 300",
                    field: "target_tracking",
                },
            ],
            replaces: &[Replace {
                from: "name = \"conf-cpu\"",
                to: "name = \"conf-cpu-2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "target_tracking",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_applicationautoscaling::types::{
                            MetricType, PolicyType, PredefinedMetricSpecification,
                            ScalableDimension, ServiceNamespace,
                            TargetTrackingScalingPolicyConfiguration,
                        };
                        let (ns, rid, dim) = autoscaling_key(&id);
                        let name = id.rsplit('/').next().unwrap();
                        let metric = PredefinedMetricSpecification::builder()
                            .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                            .build()
                            .unwrap();
                        let config = TargetTrackingScalingPolicyConfiguration::builder()
                            .target_value(90.0)
                            .predefined_metric_specification(metric)
                            .build()
                            .unwrap();
                        aws_sdk_applicationautoscaling::Client::new(&sdk(&url).await)
                            .put_scaling_policy()
                            .policy_name(name)
                            .service_namespace(ServiceNamespace::from(ns.as_str()))
                            .resource_id(rid)
                            .scalable_dimension(ScalableDimension::from(dim.as_str()))
                            .policy_type(PolicyType::TargetTrackingScaling)
                            .target_tracking_scaling_policy_configuration(config)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-cpu-b{i}")),
            // One DescribeScalingPolicies per namespace per 50 names.
            budget: |n| n.div_ceil(50),
        }
    }

    pub fn sns_topic() -> Fixture {
        Fixture {
            kind: "sns_topic",
            toml: r#"[kms_key.topic]
description = "conformance topic key"
deletion_window_in_days = 7

[sns_topic.alerts]
name = "conf-alerts"
display_name = "one"
subscriptions = [{ protocol = "email", endpoint = "ops@example.com" }]
"#,
            address: "sns_topic.alerts",
            updates: &[
                Edit {
                    from: "display_name = \"one\"",
                    to: "display_name = \"two\"",
                    field: "display_name",
                },
                Edit {
                    from: "subscriptions = [",
                    to: "subscriptions = [{ protocol = \"sqs\", endpoint = \"arn:aws:sqs:us-east-1:123456789012:conf\" }, ",
                    field: "subscriptions",
                },
                Edit {
                    from: "display_name = \"two\"",
                    to: "display_name = \"two\"\nkms_master_key_id = \"${kms_key.topic.arn}\"",
                    field: "kms_master_key_id",
                },
            ],
            replaces: &[Replace {
                from: "\"conf-alerts\"",
                to: "\"conf-alerts-2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "display_name",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_sns::Client::new(&sdk(&url).await)
                            .set_topic_attributes()
                            .topic_arn(id)
                            .attribute_name("DisplayName")
                            .attribute_value("changed by hand")
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-alerts-b{i}")),
            // GetTopicAttributes each topic (subscriptions are read only where
            // declared, beside observe); tags from the stack tag index.
            budget: |n| n + n.div_ceil(100),
        }
    }

    pub fn cloudwatch_alarm() -> Fixture {
        Fixture {
            kind: "cloudwatch_alarm",
            toml: r#"[sns_topic.page]
name = "conf-alarm-page"

[cloudwatch_alarm.cpu]
alarm_name = "conf-cpu"
namespace = "AWS/RDS"
metric_name = "CPUUtilization"
dimensions = { DBInstanceIdentifier = "conf-db" }
statistic = "Average"
period = 300
evaluation_periods = 2
threshold = 80
comparison_operator = "GreaterThanOrEqualToThreshold"
alarm_actions = ["${sns_topic.page.arn}"]
"#,
            address: "cloudwatch_alarm.cpu",
            updates: &[
                Edit {
                    from: "threshold = 80",
                    to: "threshold = 90.5",
                    field: "threshold",
                },
                Edit {
                    from: "statistic = \"Average\"",
                    to: "extended_statistic = \"p99\"",
                    field: "extended_statistic",
                },
                Edit {
                    from: "evaluation_periods = 2",
                    to: "evaluation_periods = 3\ndatapoints_to_alarm = 2",
                    field: "datapoints_to_alarm",
                },
            ],
            replaces: &[Replace {
                from: "\"conf-cpu\"",
                to: "\"conf-cpu-2\"",
                field: "alarm_name",
                apply: true,
            }],
            drift: Drift {
                field: "actions_enabled",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_cloudwatch::Client::new(&sdk(&url).await)
                            .disable_alarm_actions()
                            .alarm_names(id)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "alarm_name", format!("conf-cpu-b{i}")),
            // One DescribeAlarms per 100 alarms; tags from the stack tag index.
            budget: |n| n.div_ceil(100) + n.div_ceil(100),
        }
    }

    pub fn lambda_function() -> Fixture {
        Fixture {
            kind: "lambda_function",
            toml: concat!(
                "[iam_role.fn]\n",
                "name = \"conf-fn\"\n",
                "trusted_services = [\"lambda.amazonaws.com\"]\n\n",
                "[lambda_function.f]\n",
                "function_name = \"conf-fn\"\n",
                "runtime = \"nodejs22.x\"\n",
                "handler = \"index.handler\"\n",
                "role = \"${iam_role.fn.arn}\"\n",
                "code = \"",
                env!("CARGO_MANIFEST_DIR"),
                "/tests/conformance/function\"\n",
                "memory_size = 128\n",
            ),
            address: "lambda_function.f",
            updates: &[
                Edit {
                    from: "memory_size = 128",
                    to: "memory_size = 256",
                    field: "memory_size",
                },
                Edit {
                    from: "memory_size = 256",
                    to: "memory_size = 256\nenvironment = { MODE = \"conformance\" }",
                    field: "environment",
                },
                Edit {
                    from: "handler = \"index.handler\"",
                    to: "handler = \"index.handler\"\ntimeout = 30",
                    field: "timeout",
                },
            ],
            replaces: &[Replace {
                from: "function_name = \"conf-fn\"",
                to: "function_name = \"conf-fn-2\"",
                field: "function_name",
                apply: true,
            }],
            drift: Drift {
                field: "memory_size",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_lambda::Client::new(&sdk(&url).await)
                            .update_function_configuration()
                            .function_name(id)
                            .memory_size(1024)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "function_name", format!("conf-fn-b{i}")),
            // GetFunction answers configuration and tags in one call.
            budget: |n| n + 1,
        }
    }

    pub fn lambda_permission() -> Fixture {
        Fixture {
            kind: "lambda_permission",
            toml: concat!(
                "[iam_role.fn]\n",
                "name = \"conf-perm-fn\"\n",
                "trusted_services = [\"lambda.amazonaws.com\"]\n\n",
                "[lambda_function.f]\n",
                "function_name = \"conf-perm-fn\"\n",
                "runtime = \"nodejs22.x\"\n",
                "handler = \"index.handler\"\n",
                "role = \"${iam_role.fn.arn}\"\n",
                "code = \"",
                env!("CARGO_MANIFEST_DIR"),
                "/tests/conformance/function\"\n\n",
                "[lambda_permission.p]\n",
                "function = \"${lambda_function.f.function_name}\"\n",
                "statement_id = \"conf\"\n",
                "principal = \"events.amazonaws.com\"\n",
                "source_arn = \"arn:aws:events:us-east-1:123456789012:rule/conf\"\n",
            ),
            address: "lambda_permission.p",
            // Lambda changes no statement in place.
            updates: &[],
            replaces: &[
                Replace {
                    from: "statement_id = \"conf\"",
                    to: "statement_id = \"conf-2\"",
                    field: "statement_id",
                    apply: true,
                },
                Replace {
                    from: "principal = \"events.amazonaws.com\"",
                    to: "principal = \"sns.amazonaws.com\"",
                    field: "principal",
                    apply: false,
                },
            ],
            drift: Drift {
                field: "principal",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let (function, sid) = id.split_once('/').unwrap();
                        aws_sdk_lambda::Client::new(&sdk(&url).await)
                            .remove_permission()
                            .function_name(function)
                            .statement_id(sid)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "statement_id", format!("conf-b{i}")),
            // One GetPolicy for all the statements of one function.
            budget: |_| 1,
        }
    }

    pub fn eventbridge_rule() -> Fixture {
        Fixture {
            kind: "eventbridge_rule",
            toml: r#"[eventbridge_rule.r]
name = "conf-rule"
schedule_expression = "rate(5 minutes)"
targets = [{ id = "t", arn = "arn:aws:sns:us-east-1:123456789012:conf" }]
"#,
            address: "eventbridge_rule.r",
            updates: &[
                Edit {
                    from: "rate(5 minutes)",
                    to: "rate(1 hour)",
                    field: "schedule_expression",
                },
                Edit {
                    from: "targets = [",
                    to: "targets = [{ id = \"u\", arn = \"arn:aws:sns:us-east-1:123456789012:other\", input = \"{\\\"a\\\": 1}\" }, ",
                    field: "targets",
                },
                Edit {
                    from: "name = \"conf-rule\"",
                    to: "name = \"conf-rule\"\ndescription = \"hourly\"",
                    field: "description",
                },
            ],
            replaces: &[Replace {
                from: "\"conf-rule\"",
                to: "\"conf-rule-2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "enabled",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let name = id.rsplit('/').next().unwrap().to_string();
                        aws_sdk_eventbridge::Client::new(&sdk(&url).await)
                            .disable_rule()
                            .name(name)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-rule-b{i}")),
            // DescribeRule and ListTargetsByRule per rule, and its tags (the
            // emulator's Tagging API does not list rules).
            budget: |n| 3 * n + 1,
        }
    }

    pub fn route53_zone() -> Fixture {
        Fixture {
            kind: "route53_zone",
            toml: r#"[route53_zone.main]
name = "conf-zone.example.com"
comment = "one"
"#,
            address: "route53_zone.main",
            updates: &[Edit {
                from: "comment = \"one\"",
                to: "comment = \"two\"",
                field: "comment",
            }],
            replaces: &[Replace {
                from: "\"conf-zone.example.com\"",
                to: "\"conf-zone-2.example.com\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "comment",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_route53::Client::new(&sdk(&url).await)
                            .update_hosted_zone_comment()
                            .id(id)
                            .comment("changed by hand")
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-zone-b{i}.example.com")),
            // GetHostedZone each zone; ListTagsForResources per 10 zones.
            budget: |n| n + n.div_ceil(10),
        }
    }

    pub fn route53_record() -> Fixture {
        Fixture {
            kind: "route53_record",
            toml: r#"[route53_zone.z]
name = "conf-records.example.com"

[route53_record.r]
zone_id = "${route53_zone.z.id}"
name = "app"
type = "A"
ttl = 60
records = ["192.0.2.1"]
"#,
            address: "route53_record.r",
            updates: &[
                Edit {
                    from: "ttl = 60",
                    to: "ttl = 120",
                    field: "ttl",
                },
                Edit {
                    from: "records = [\"192.0.2.1\"]",
                    to: "records = [\"192.0.2.1\", \"192.0.2.2\"]",
                    field: "records",
                },
            ],
            replaces: &[Replace {
                from: "name = \"app\"",
                to: "name = \"app2\"",
                field: "name",
                apply: true,
            }],
            drift: Drift {
                field: "records",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_route53::types::{
                            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
                            RrType,
                        };
                        // ZONE_NAME_TYPE
                        let (zone, rest) = id.split_once('_').unwrap();
                        let (name, _) = rest.rsplit_once('_').unwrap();
                        let rr = ResourceRecordSet::builder()
                            .name(name)
                            .r#type(RrType::A)
                            .ttl(120)
                            .resource_records(
                                ResourceRecord::builder()
                                    .value("192.0.2.200")
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap();
                        let change = Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(rr)
                            .build()
                            .unwrap();
                        aws_sdk_route53::Client::new(&sdk(&url).await)
                            .change_resource_record_sets()
                            .hosted_zone_id(zone)
                            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("b{i}")),
            // The zone's records in one ListResourceRecordSets page, however many.
            budget: |_| 1,
        }
    }

    pub fn cognito_user_pool() -> Fixture {
        Fixture {
            kind: "cognito_user_pool",
            toml: r#"[cognito_user_pool.p]
name = "conf-pool"
username_attributes = ["email"]
auto_verified_attributes = ["email"]
mfa_configuration = "OFF"
password_policy = { minimum_length = 8 }
custom_attributes = [{ name = "role", max_length = 50 }]
"#,
            address: "cognito_user_pool.p",
            updates: &[
                Edit {
                    from: "minimum_length = 8",
                    to: "minimum_length = 12",
                    field: "password_policy",
                },
                Edit {
                    from: "mfa_configuration = \"OFF\"",
                    to: "mfa_configuration = \"OPTIONAL\"\nsoftware_token_mfa = true",
                    field: "mfa_configuration",
                },
                // Adding a custom attribute is done in place.
                Edit {
                    from: "{ name = \"role\", max_length = 50 }]",
                    to: "{ name = \"role\", max_length = 50 }, { name = \"org\" }]",
                    field: "custom_attributes",
                },
            ],
            replaces: &[
                Replace {
                    from: "[\"email\"]\nauto",
                    to: "[\"phone_number\"]\nauto",
                    field: "username_attributes",
                    apply: true,
                },
                // Changing one AWS cannot do: only a new pool has it.
                Replace {
                    from: "max_length = 50",
                    to: "max_length = 60",
                    field: "custom_attributes",
                    apply: false,
                },
            ],
            // MFA switched off by hand.
            drift: Drift {
                field: "mfa_configuration",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        aws_sdk_cognitoidentityprovider::Client::new(&sdk(&url).await)
                            .set_user_pool_mfa_config()
                            .user_pool_id(id)
                            .mfa_configuration(
                                aws_sdk_cognitoidentityprovider::types::UserPoolMfaType::Off,
                            )
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-pool-b{i}")),
            // DescribeUserPool and GetUserPoolMfaConfig per pool: Cognito reads one at a time.
            budget: |n| 2 * n,
        }
    }

    pub fn cognito_user_pool_client() -> Fixture {
        Fixture {
            kind: "cognito_user_pool_client",
            toml: r#"[cognito_user_pool.p]
name = "conf-client-pool"

[cognito_user_pool.q]
name = "conf-client-pool-2"

[cognito_user_pool_client.c]
user_pool_id = "${cognito_user_pool.p.id}"
name = "web"
explicit_auth_flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = ["https://app.example.com/callback"]
access_token_validity = "1h"
"#,
            address: "cognito_user_pool_client.c",
            updates: &[
                Edit {
                    from: "[\"https://app.example.com/callback\"]",
                    to:
                        "[\"https://app.example.com/callback\", \"http://localhost:3000/callback\"]",
                    field: "callback_urls",
                },
                Edit {
                    from: "access_token_validity = \"1h\"",
                    to: "access_token_validity = \"30m\"",
                    field: "access_token_validity",
                },
            ],
            replaces: &[Replace {
                from: "${cognito_user_pool.p.id}",
                to: "${cognito_user_pool.q.id}",
                field: "user_pool_id",
                apply: true,
            }],
            // A callback URL added by hand.
            drift: Drift {
                field: "callback_urls",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let c = aws_sdk_cognitoidentityprovider::Client::new(&sdk(&url).await);
                        let (pool, client) = id.split_once('/').unwrap();
                        let now = c
                            .describe_user_pool_client()
                            .user_pool_id(pool)
                            .client_id(client)
                            .send()
                            .await
                            .unwrap();
                        let now = now.user_pool_client().unwrap();
                        let mut urls = now.callback_urls().to_vec();
                        urls.push("https://evil.example.com/steal".into());
                        c.update_user_pool_client()
                            .user_pool_id(pool)
                            .client_id(client)
                            .set_client_name(now.client_name().map(str::to_string))
                            .set_explicit_auth_flows(Some(now.explicit_auth_flows().to_vec()))
                            .set_allowed_o_auth_flows(Some(now.allowed_o_auth_flows().to_vec()))
                            .set_allowed_o_auth_scopes(Some(now.allowed_o_auth_scopes().to_vec()))
                            .set_callback_urls(Some(urls))
                            .set_access_token_validity(now.access_token_validity())
                            .set_id_token_validity(now.id_token_validity())
                            .refresh_token_validity(now.refresh_token_validity())
                            .set_token_validity_units(now.token_validity_units().cloned())
                            .set_prevent_user_existence_errors(
                                now.prevent_user_existence_errors().cloned(),
                            )
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("web-b{i}")),
            // One DescribeUserPoolClient per client.
            budget: |n| n,
        }
    }

    async fn identity(url: &str) -> aws_sdk_cognitoidentity::Client {
        aws_sdk_cognitoidentity::Client::new(&sdk(url).await)
    }

    pub fn cognito_identity_pool() -> Fixture {
        Fixture {
            kind: "cognito_identity_pool",
            toml: r#"[cognito_user_pool.p]
name = "conf-identities-users"

[cognito_user_pool_client.web]
user_pool_id = "${cognito_user_pool.p.id}"
name = "web"

[cognito_user_pool_client.mobile]
user_pool_id = "${cognito_user_pool.p.id}"
name = "mobile"

[cognito_identity_pool.i]
name = "conf identities"
cognito_identity_providers = [
  { provider_name = "${cognito_user_pool.p.endpoint}", client_id = "${cognito_user_pool_client.web.client_id}" },
]
"#,
            address: "cognito_identity_pool.i",
            updates: &[
                Edit {
                    from: "name = \"conf identities\"",
                    to: "name = \"conf identities\"\nallow_unauthenticated_identities = true",
                    field: "allow_unauthenticated_identities",
                },
                Edit {
                    from: "web.client_id}\" },",
                    to: "web.client_id}\" },\n  { provider_name = \"${cognito_user_pool.p.endpoint}\", client_id = \"${cognito_user_pool_client.mobile.client_id}\", server_side_token_check = true },",
                    field: "cognito_identity_providers",
                },
            ],
            // Nothing of a pool forces a new one: AWS updates every field in place.
            replaces: &[],
            // Guests let in by hand.
            drift: Drift {
                field: "allow_unauthenticated_identities",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let c = identity(&url).await;
                        let now = c
                            .describe_identity_pool()
                            .identity_pool_id(&id)
                            .send()
                            .await
                            .unwrap();
                        c.update_identity_pool()
                            .identity_pool_id(&id)
                            .identity_pool_name(now.identity_pool_name())
                            .allow_unauthenticated_identities(!now.allow_unauthenticated_identities())
                            .set_cognito_identity_providers(Some(
                                now.cognito_identity_providers().to_vec(),
                            ))
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf identities b{i}")),
            // One DescribeIdentityPool per pool.
            budget: |n| n,
        }
    }

    /// The pools the roles' budget copies attach to: AWS chooses pool ids, so
    /// the drift step, which has the emulator at hand, makes them.
    static ROLE_POOLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    pub fn cognito_identity_pool_roles() -> Fixture {
        Fixture {
            kind: "cognito_identity_pool_roles",
            toml: r#"[cognito_identity_pool.a]
name = "conf roles a"
allow_unauthenticated_identities = true

[cognito_identity_pool.b]
name = "conf roles b"
allow_unauthenticated_identities = true

[iam_role.signed_in]
name = "conf-roles-signed-in"
trusted_services = ["cognito-identity.amazonaws.com"]

[iam_role.guest]
name = "conf-roles-guest"
trusted_services = ["cognito-identity.amazonaws.com"]

[cognito_identity_pool_roles.r]
identity_pool_id = "${cognito_identity_pool.a.id}"
authenticated_role = "${iam_role.signed_in.arn}"
"#,
            address: "cognito_identity_pool_roles.r",
            updates: &[
                Edit {
                    from: "authenticated_role = \"${iam_role.signed_in.arn}\"",
                    to: "authenticated_role = \"${iam_role.signed_in.arn}\"\nunauthenticated_role = \"${iam_role.guest.arn}\"",
                    field: "unauthenticated_role",
                },
                Edit {
                    from: "authenticated_role = \"${iam_role.signed_in.arn}\"",
                    to: "authenticated_role = \"${iam_role.guest.arn}\"",
                    field: "authenticated_role",
                },
            ],
            replaces: &[Replace {
                from: "${cognito_identity_pool.a.id}",
                to: "${cognito_identity_pool.b.id}",
                field: "identity_pool_id",
                apply: false,
            }],
            // The signed-in role swapped by hand.
            drift: Drift {
                field: "authenticated_role",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let c = identity(&url).await;
                        let role = "arn:aws:iam::123456789012:role/someone-elses";
                        c.set_identity_pool_roles()
                            .identity_pool_id(&id)
                            .roles("authenticated", role)
                            .send()
                            .await
                            .unwrap();
                        let mut pools = Vec::new();
                        for i in 0..10 {
                            let p = c
                                .create_identity_pool()
                                .identity_pool_name(format!("conf roles budget {i}"))
                                .allow_unauthenticated_identities(false)
                                .send()
                                .await
                                .unwrap();
                            pools.push(p.identity_pool_id().to_string());
                        }
                        *ROLE_POOLS.lock().unwrap() = pools;
                    })
                },
            },
            vary: |f, i| set(f, "identity_pool_id", ROLE_POOLS.lock().unwrap()[i].clone()),
            // One GetIdentityPoolRoles per pool.
            budget: |n| n,
        }
    }

    pub fn cloudfront_origin_access_control() -> Fixture {
        Fixture {
            kind: "cloudfront_origin_access_control",
            toml: r#"[cloudfront_origin_access_control.oac]
name = "conf-oac"
description = "one"
"#,
            address: "cloudfront_origin_access_control.oac",
            updates: &[
                Edit {
                    from: "description = \"one\"",
                    to: "description = \"two\"",
                    field: "description",
                },
                Edit {
                    from: "description = \"two\"",
                    to: "description = \"two\"\nsigning_behavior = \"no-override\"",
                    field: "signing_behavior",
                },
            ],
            // Every field is updated in place.
            replaces: &[],
            drift: Drift {
                field: "description",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let cf = aws_sdk_cloudfront::Client::new(&sdk(&url).await);
                        let got = cf.get_origin_access_control().id(&id).send().await.unwrap();
                        let mut c = got
                            .origin_access_control
                            .unwrap()
                            .origin_access_control_config
                            .unwrap();
                        c.description = Some("changed by hand".into());
                        cf.update_origin_access_control()
                            .id(&id)
                            .set_if_match(got.e_tag)
                            .origin_access_control_config(c)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-oac-b{i}")),
            // One ListOriginAccessControls a page of 100.
            budget: |n| n.div_ceil(100),
        }
    }

    pub fn cloudfront_distribution() -> Fixture {
        Fixture {
            kind: "cloudfront_distribution",
            toml: r#"[s3_bucket.origin]
name = "conf-cdn-origin"

[cloudfront_origin_access_control.cdn]
name = "conf-cdn"

[cloudfront_distribution.cdn]
comment = "one"
price_class = "PriceClass_100"
origins = [{ id = "s3", domain_name = "${s3_bucket.origin.bucket_regional_domain_name}", origin_access_control_id = "${cloudfront_origin_access_control.cdn.id}" }]
default_cache_behavior = { target_origin_id = "s3", viewer_protocol_policy = "https-only", cache_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6" }
"#,
            address: "cloudfront_distribution.cdn",
            updates: &[
                Edit {
                    from: "comment = \"one\"",
                    to: "comment = \"two\"",
                    field: "comment",
                },
                Edit {
                    from: "\"PriceClass_100\"",
                    to: "\"PriceClass_200\"",
                    field: "price_class",
                },
                Edit {
                    from: "\"https-only\"",
                    to: "\"redirect-to-https\"",
                    field: "default_cache_behavior",
                },
                Edit {
                    from: "bucket_regional_domain_name}\"",
                    to: "bucket_regional_domain_name}\", origin_path = \"/v1\"",
                    field: "origins",
                },
            ],
            // Every field is updated in place.
            replaces: &[],
            // The origin pointed at another bucket by hand.
            drift: Drift {
                field: "origins",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let cf = aws_sdk_cloudfront::Client::new(&sdk(&url).await);
                        let got = cf.get_distribution_config().id(&id).send().await.unwrap();
                        let mut c = got.distribution_config.unwrap();
                        c.origins.as_mut().unwrap().items[0].domain_name =
                            "elsewhere.s3.us-east-1.amazonaws.com".into();
                        cf.update_distribution()
                            .id(&id)
                            .set_if_match(got.e_tag)
                            .distribution_config(c)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: same,
            // One GetDistribution per distribution; tags from the stack tag index.
            budget: |n| n + n.div_ceil(100),
        }
    }

    pub fn s3_bucket_policy() -> Fixture {
        Fixture {
            kind: "s3_bucket_policy",
            toml: r#"[s3_bucket.a]
name = "conf-bp-a"

[s3_bucket.b]
name = "conf-bp-b"

[s3_bucket.b0]
name = "conf-bp-b0"

[s3_bucket.b1]
name = "conf-bp-b1"

[s3_bucket.b2]
name = "conf-bp-b2"

[s3_bucket.b3]
name = "conf-bp-b3"

[s3_bucket.b4]
name = "conf-bp-b4"

[s3_bucket.b5]
name = "conf-bp-b5"

[s3_bucket.b6]
name = "conf-bp-b6"

[s3_bucket.b7]
name = "conf-bp-b7"

[s3_bucket.b8]
name = "conf-bp-b8"

[s3_bucket.b9]
name = "conf-bp-b9"

[s3_bucket_policy.p]
bucket = "${s3_bucket.a.id}"
policy = '{"Version": "2012-10-17", "Statement": [{"Sid": "one", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::conf-bp-a/*"}]}'
"#,
            address: "s3_bucket_policy.p",
            updates: &[Edit {
                from: "\"Sid\": \"one\"",
                to: "\"Sid\": \"two\"",
                field: "policy",
            }],
            replaces: &[Replace {
                from: "${s3_bucket.a.id}",
                to: "${s3_bucket.b.id}",
                field: "bucket",
                apply: true,
            }],
            // Another policy put on the bucket by hand.
            drift: Drift {
                field: "policy",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        let conf = aws_sdk_s3::config::Builder::from(&sdk(&url).await)
                            .force_path_style(true)
                            .build();
                        aws_sdk_s3::Client::from_conf(conf)
                            .put_bucket_policy()
                            .bucket(&id)
                            .policy(r#"{"Version": "2012-10-17", "Statement": [{"Sid": "hand", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::conf-bp-b/*"}]}"#)
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "bucket", format!("conf-bp-b{i}")),
            // One GetBucketPolicy per policy.
            budget: |n| n,
        }
    }

    pub fn api_gateway_rest_api() -> Fixture {
        Fixture {
            kind: "api_gateway_rest_api",
            toml: r#"[api_gateway_rest_api.api]
name = "conf-api"
description = "one"
endpoint_type = "REGIONAL"
routes = [{ path = "/health", method = "GET", integration = { type = "MOCK" } }]
stage = { name = "prod", throttling_rate_limit = 10, throttling_burst_limit = 20 }
"#,
            address: "api_gateway_rest_api.api",
            updates: &[
                Edit {
                    from: "description = \"one\"",
                    to: "description = \"two\"",
                    field: "description",
                },
                // A route moved: the method is deleted and put again, and the stage redeployed.
                Edit {
                    from: "path = \"/health\"",
                    to: "path = \"/status\"",
                    field: "routes",
                },
                Edit {
                    from: "throttling_burst_limit = 20",
                    to: "throttling_burst_limit = 40",
                    field: "stage",
                },
            ],
            replaces: &[Replace {
                from: "\"REGIONAL\"",
                to: "\"EDGE\"",
                field: "endpoint_type",
                apply: true,
            }],
            // Throttling raised by hand on the stage.
            drift: Drift {
                field: "stage",
                change: |url, id| -> Oob {
                    Box::pin(async move {
                        use aws_sdk_apigateway::types::{Op, PatchOperation};
                        aws_sdk_apigateway::Client::new(&sdk(&url).await)
                            .update_stage()
                            .rest_api_id(id)
                            .stage_name("prod")
                            .patch_operations(
                                PatchOperation::builder()
                                    .op(Op::Replace)
                                    .path("/*/*/throttling/rateLimit")
                                    .value("500")
                                    .build(),
                            )
                            .send()
                            .await
                            .unwrap();
                    })
                },
            },
            vary: |f, i| set(f, "name", format!("conf-api-b{i}")),
            // GetRestApi, GetResources (methods embedded), GetAuthorizers and GetStages per API.
            budget: |n| 4 * n,
        }
    }
}
