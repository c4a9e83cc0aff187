//! The seed stacks under `desired-state/` applied from nothing against moto and
//! checked with independent SDK clients: what exists, that a second plan is
//! clean, that out-of-band damage to the data tier is caught and repaired, and
//! that with its guards removed on purpose a seed destroys to nothing.

mod common;
use common::{s3, versioning, Moto, Project};

/// Applies the seed from nothing, then checks that a second plan is clean.
fn apply_and_replan(p: &Project, moto: &Moto, name: &str) {
    let stack = format!("desired-state/{name}");
    let r = p.run(Some(moto), &["apply", &stack, "--auto-approve"]);
    assert_eq!(r.code, 0, "apply {name}:\n{}", r.all());
    let r = p.run(Some(moto), &["plan", &stack, "--detailed-exitcode"]);
    assert_eq!(
        r.code,
        0,
        "second plan of {name} is not clean:\n{}",
        r.all()
    );
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
}

/// Removes the seed's guards on purpose (`protect`, deletion protection),
/// applies that, destroys, and checks with the Tagging API that nothing tagged
/// with the stack is left but what AWS keeps on purpose for a while: KMS keys
/// and secrets scheduled for deletion, and final database snapshots.
async fn destroy_without_guards(p: &Project, moto: &Moto, name: &str) {
    let guard = regex_lite::Regex::new(
        r"(?m)^(\s*(?:protect|deletion_protection|deletion_protection_enabled)\s*=\s*)true",
    )
    .unwrap();
    let dir = p.path().join("desired-state").join(name);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, guard.replace_all(&text, "${1}false").as_ref()).unwrap();
    }
    let stack = format!("desired-state/{name}");
    let r = p.run(Some(moto), &["apply", &stack, "--auto-approve"]);
    assert_eq!(r.code, 0, "apply {name} without guards:\n{}", r.all());
    let r = p.run(Some(moto), &["destroy", &stack, "--auto-approve"]);
    assert_eq!(r.code, 0, "destroy {name}:\n{}", r.all());

    let c = moto.sdk().await;
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&c);
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key("reconcile:stack")
        .values(name)
        .build();
    let left = tagging
        .get_resources()
        .tag_filters(filter)
        .send()
        .await
        .unwrap();
    let kms = aws_sdk_kms::Client::new(&c);
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    let ecs = aws_sdk_ecs::Client::new(&c);
    let ec2 = aws_sdk_ec2::Client::new(&c);
    let mut survivors = Vec::new();
    for m in left.resource_tag_mapping_list() {
        let arn = m.resource_arn().unwrap();
        let kept = match arn.split(':').nth(2) {
            Some("kms") => {
                let d = kms.describe_key().key_id(arn).send().await.unwrap();
                d.key_metadata().unwrap().key_state().map(|s| s.as_str()) == Some("PendingDeletion")
            }
            Some("secretsmanager") => {
                let d = sm.describe_secret().secret_id(arn).send().await.unwrap();
                d.deleted_date().is_some()
            }
            Some("rds") => arn.contains(":snapshot:") || arn.contains(":cluster-snapshot:"),
            // AWS shows a deleted service as INACTIVE, and a deleted NAT
            // gateway as `deleted`, for about an hour after.
            Some("ecs") if arn.contains(":service/") => {
                let (cluster, service) = arn
                    .rsplit_once(":service/")
                    .and_then(|(_, p)| p.split_once('/'))
                    .unwrap();
                let d = ecs
                    .describe_services()
                    .cluster(cluster)
                    .services(service)
                    .send()
                    .await
                    .unwrap();
                d.services().iter().all(|s| s.status() == Some("INACTIVE"))
            }
            // Deleted clusters and deregistered task definition revisions stay
            // listed as INACTIVE: ECS's record, not a resource.
            Some("ecs") if arn.contains(":cluster/") => {
                let d = ecs.describe_clusters().clusters(arn).send().await.unwrap();
                d.clusters().iter().all(|c| c.status() == Some("INACTIVE"))
            }
            Some("ecs") if arn.contains(":task-definition/") => {
                let d = ecs
                    .describe_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .unwrap();
                d.task_definition()
                    .and_then(|t| t.status())
                    .is_some_and(|s| s.as_str() == "INACTIVE")
            }
            Some("ec2") if arn.contains(":natgateway/") => {
                let id = arn.rsplit('/').next().unwrap();
                let d = ec2
                    .describe_nat_gateways()
                    .nat_gateway_ids(id)
                    .send()
                    .await
                    .unwrap();
                d.nat_gateways()
                    .iter()
                    .all(|n| n.state().map(|s| s.as_str()) == Some("deleted"))
            }
            _ => false,
        };
        if !kept {
            survivors.push(arn.to_string());
        }
    }
    assert!(
        survivors.is_empty(),
        "still tagged with stack {name} after destroy: {survivors:#?}"
    );
}

/// What a bucket of a seed looks like to an independent client: versioning,
/// default encryption (algorithm, key, bucket key), every public access
/// switch on, and its lifecycle rules by id.
struct Bucket {
    versioning: String,
    sse: (String, Option<String>, bool),
    rules: Vec<aws_sdk_s3::types::LifecycleRule>,
}

async fn bucket(s3: &aws_sdk_s3::Client, name: &str) -> Bucket {
    let enc = s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    let by_default = rule.apply_server_side_encryption_by_default().unwrap();
    let pab = s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert!(
        pab.block_public_acls() == Some(true)
            && pab.ignore_public_acls() == Some(true)
            && pab.block_public_policy() == Some(true)
            && pab.restrict_public_buckets() == Some(true),
        "{name}: {pab:?}"
    );
    let rules = match s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(l) => l.rules().to_vec(),
        Err(_) => vec![],
    };
    Bucket {
        versioning: versioning(s3, name).await,
        sse: (
            by_default.sse_algorithm().as_str().to_string(),
            by_default.kms_master_key_id().map(str::to_string),
            rule.bucket_key_enabled().unwrap_or(false),
        ),
        rules,
    }
}

async fn secret_names(sm: &aws_sdk_secretsmanager::Client) -> Vec<String> {
    let mut names: Vec<String> = sm
        .list_secrets()
        .send()
        .await
        .unwrap()
        .secret_list()
        .iter()
        .filter_map(|s| s.name().map(str::to_string))
        .collect();
    names.sort();
    names
}

async fn secret_json(sm: &aws_sdk_secretsmanager::Client, name: &str) -> serde_json::Value {
    let v = sm.get_secret_value().secret_id(name).send().await.unwrap();
    serde_json::from_str(v.secret_string().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_smart_network_database_and_secrets() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    let zone = p.maxhealth_zone(&moto).await;
    apply_and_replan(&p, &moto, "proxy-smart");

    let c = moto.sdk().await;
    // The two names alias their load balancers, and each certificate's
    // validation record is in the imported zone.
    let r53 = aws_sdk_route53::Client::new(&c);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&c);
    let records = zone_records(&r53, &zone).await;
    for (name, lb) in [
        ("auth.maxhealth.tech", "proxy-smart-keycloak"),
        ("api.auth.maxhealth.tech", "proxy-smart-backend"),
    ] {
        let d = elb
            .describe_load_balancers()
            .names(lb)
            .send()
            .await
            .unwrap();
        let lb = &d.load_balancers()[0];
        let alias = records
            .iter()
            .find(|r| r.0 == name && r.1 == "A")
            .unwrap_or_else(|| panic!("no A record {name}: {records:?}"));
        assert_eq!(
            alias.2.to_lowercase(),
            lb.dns_name().unwrap().to_lowercase(),
            "{name}"
        );
    }
    let acm = aws_sdk_acm::Client::new(&c);
    let certs = acm.list_certificates().send().await.unwrap();
    for cert in certs.certificate_summary_list() {
        let d = acm
            .describe_certificate()
            .certificate_arn(cert.certificate_arn().unwrap())
            .send()
            .await
            .unwrap();
        for o in d.certificate().unwrap().domain_validation_options() {
            let rr = o.resource_record().expect("a DNS validation record");
            let name = rr.name().trim_end_matches('.').to_lowercase();
            let value = rr.value().trim_end_matches('.').to_lowercase();
            assert!(
                records
                    .iter()
                    .any(|r| r.0 == name && r.1 == "CNAME" && r.2 == value),
                "no validation record {name} -> {value}: {records:?}"
            );
        }
    }
    let rds = aws_sdk_rds::Client::new(&c);
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    let db = rds
        .describe_db_instances()
        .db_instance_identifier("proxy-smart-keycloak")
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    assert_eq!(db.engine(), Some("postgres"));
    assert!(db.engine_version().unwrap().starts_with("16"));
    assert_eq!(db.db_instance_class(), Some("db.t4g.micro"));
    assert_eq!(db.allocated_storage(), Some(20));
    assert_eq!(db.max_allocated_storage(), Some(100));
    assert_eq!(db.multi_az(), Some(true));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.deletion_protection(), Some(true));
    assert_eq!(db.publicly_accessible(), Some(false));
    assert_eq!(db.backup_retention_period(), Some(7));
    assert_eq!(db.db_name(), Some("keycloak"));
    assert_eq!(db.master_username(), Some("keycloak"));
    let group = db.db_subnet_group().unwrap();
    assert_eq!(group.db_subnet_group_name(), Some("proxy-smart-keycloak"));
    assert_eq!(group.subnets().len(), 2);

    assert_eq!(
        secret_names(&sm).await,
        [
            "proxy-smart/backend-keycloak-admin",
            "proxy-smart/db-credentials",
            "proxy-smart/keycloak-admin"
        ]
    );
    let creds = secret_json(&sm, "proxy-smart/db-credentials").await;
    assert_eq!(creds["username"], "keycloak");
    let pw = creds["password"].as_str().unwrap();
    assert_eq!(pw.len(), 32);
    assert!(
        pw.chars().all(|c| c.is_ascii_alphanumeric()),
        "no punctuation"
    );
    // The instance's connection details sit beside the credentials, as CDK's attach() puts them.
    let endpoint = db.endpoint().unwrap();
    assert_eq!(creds["host"].as_str(), endpoint.address());
    assert_eq!(creds["port"].as_i64(), endpoint.port().map(i64::from));
    assert_eq!(creds["engine"], "postgres");
    assert_eq!(creds["dbInstanceIdentifier"], "proxy-smart-keycloak");
    assert_eq!(creds["dbname"], "keycloak");
    let backend = secret_json(&sm, "proxy-smart/backend-keycloak-admin").await;
    assert_eq!(backend["clientId"], "admin-cli");
    assert_eq!(backend["clientSecret"].as_str().unwrap().len(), 32);

    // The password in Secrets Manager never reached the state directory.
    for entry in std::fs::read_dir(p.state_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(pw), "the database password is in state");
    }

    // The realm backups: versioned, exports and their old versions gone after 90 days.
    let backups = bucket(&s3(&moto).await, "proxy-smart-backups").await;
    assert_eq!(backups.versioning, "Enabled");
    assert_eq!(backups.sse.0, "AES256");
    let rule = &backups.rules[0];
    assert_eq!(rule.expiration().unwrap().days(), Some(90));
    assert_eq!(
        rule.noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(90)
    );

    // The nightly export: the function, its schedule, and the permission that
    // lets the schedule (and only it) invoke the function.
    let c = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&c);
    let f = lambda
        .get_function()
        .function_name("proxy-smart-realm-backup")
        .send()
        .await
        .unwrap();
    let conf = f.configuration().unwrap();
    assert_eq!(conf.runtime().map(|r| r.as_str()), Some("nodejs22.x"));
    assert_eq!(conf.handler(), Some("index.handler"));
    assert!(
        conf.role()
            .unwrap()
            .ends_with(":role/proxy-smart-realm-backup"),
        "{:?}",
        conf.role()
    );
    assert!(conf.code_size() > 0);
    let env = conf.environment().unwrap().variables().unwrap();
    assert_eq!(env["KEYCLOAK_URL"], "https://auth.maxhealth.tech");
    assert_eq!(env["BACKUP_BUCKET"], "proxy-smart-backups");
    assert!(
        env["KEYCLOAK_ADMIN_SECRET_ARN"].starts_with("arn:aws:secretsmanager:"),
        "the function gets the secret's ARN, never its value"
    );
    let events = aws_sdk_eventbridge::Client::new(&c);
    let rule = events
        .describe_rule()
        .name("proxy-smart-daily-realm-backup")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("cron(0 3 * * ? *)"));
    assert_eq!(rule.state().map(|s| s.as_str()), Some("ENABLED"));
    let targets = events
        .list_targets_by_rule()
        .rule("proxy-smart-daily-realm-backup")
        .send()
        .await
        .unwrap();
    let target_arns: Vec<&str> = targets.targets().iter().map(|t| t.arn()).collect();
    assert_eq!(target_arns, [conf.function_arn().unwrap()]);
    let policy = lambda
        .get_policy()
        .function_name("proxy-smart-realm-backup")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{doc}");
    assert_eq!(statements[0]["Sid"], "AllowDailyRealmBackupSchedule");
    assert_eq!(
        statements[0]["Principal"]["Service"],
        "events.amazonaws.com"
    );
    assert_eq!(
        statements[0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        rule.arn().unwrap()
    );

    destroy_without_guards(&p, &moto, "proxy-smart").await;
    let rules = events.list_rules().send().await.unwrap();
    assert!(rules.rules().is_empty(), "{:?}", rules.rules());
    let functions = lambda.list_functions().send().await.unwrap();
    assert!(functions.functions().is_empty());
    // The imported zone stays, with only its own NS and SOA.
    let left = zone_records(&r53, &zone).await;
    let kinds: Vec<(&str, &str)> = left.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        kinds,
        [("maxhealth.tech", "NS"), ("maxhealth.tech", "SOA")],
        "{left:?}"
    );
}

/// A zone's records as (name, type, alias target or first value), names and
/// values without trailing dots.
async fn zone_records(r53: &aws_sdk_route53::Client, zone: &str) -> Vec<(String, String, String)> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let clean = |s: &str| s.trim_end_matches('.').to_string();
    out.resource_record_sets()
        .iter()
        .map(|r| {
            let target = match r.alias_target() {
                Some(t) => clean(t.dns_name()),
                None => r
                    .resource_records()
                    .first()
                    .map(|v| clean(v.value()))
                    .unwrap_or_default(),
            };
            (clean(r.name()), r.r#type().as_str().to_string(), target)
        })
        .collect()
}

/// MentalSpace's identity pool: the web client's sign-ins only, no guests,
/// and a signed-in role that only this pool's authenticated identities may
/// assume, reading and writing the two buckets.
async fn mentalspace_identity_pool(c: &aws_config::SdkConfig, user_pool: &str, client: &str) {
    let ci = aws_sdk_cognitoidentity::Client::new(c);
    let pools = ci
        .list_identity_pools()
        .max_results(60)
        .send()
        .await
        .unwrap();
    assert_eq!(pools.identity_pools().len(), 1);
    let id = pools.identity_pools()[0].identity_pool_id().unwrap();
    let pool = ci
        .describe_identity_pool()
        .identity_pool_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(pool.identity_pool_name(), "mentalspace-ehr-identities");
    assert!(!pool.allow_unauthenticated_identities());
    let provider = &pool.cognito_identity_providers()[0];
    assert_eq!(provider.client_id(), Some(client));
    assert_eq!(
        provider.provider_name(),
        Some(format!("cognito-idp.{}.amazonaws.com/{user_pool}", common::REGION).as_str())
    );
    let roles = ci
        .get_identity_pool_roles()
        .identity_pool_id(id)
        .send()
        .await
        .unwrap();
    let roles = roles.roles().unwrap();
    assert_eq!(roles.len(), 1, "{roles:?}");
    let arn = &roles["authenticated"];
    assert!(arn.ends_with(":role/mentalspace-ehr-signed-in"), "{arn}");

    let iam = aws_sdk_iam::Client::new(c);
    let role = iam
        .get_role()
        .role_name("mentalspace-ehr-signed-in")
        .send()
        .await
        .unwrap();
    let trust = role.role().unwrap().assume_role_policy_document().unwrap();
    let trust = reconcile_aws::kit::policy::canonical_policy(trust).unwrap();
    let aud = format!("\"cognito-identity.amazonaws.com:aud\":[\"{id}\"]");
    assert!(trust.contains(&aud), "{trust}");
    let policy = iam
        .get_role_policy()
        .role_name("mentalspace-ehr-signed-in")
        .policy_name("read-write-files")
        .send()
        .await
        .unwrap();
    let doc = reconcile_aws::kit::policy::canonical_policy(policy.policy_document()).unwrap();
    for b in ["files", "videos"] {
        assert!(
            doc.contains(&format!("arn:aws:s3:::mentalspace-ehr-{b}-706704660887/*")),
            "{doc}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mentalspace_aurora_serverless_v2_with_writer_and_reader() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("mentalspace-ehr");
    apply_and_replan(&p, &moto, "mentalspace-ehr");

    let c = moto.sdk().await;
    // Sign-in: MFA required with either factor, 12-character passwords, no self sign-up.
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&c);
    let pools = idp.list_user_pools().max_results(60).send().await.unwrap();
    let pool_id = pools.user_pools()[0].id().unwrap();
    let up = idp
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .unwrap();
    let up = up.user_pool().unwrap();
    assert_eq!(up.name(), Some("mentalspace-ehr-users"));
    let policy = up.policies().unwrap().password_policy().unwrap();
    assert_eq!(policy.minimum_length(), Some(12));
    assert!(up
        .admin_create_user_config()
        .unwrap()
        .allow_admin_create_user_only());
    let mfa = idp
        .get_user_pool_mfa_config()
        .user_pool_id(pool_id)
        .send()
        .await
        .unwrap();
    assert_eq!(mfa.mfa_configuration().map(|m| m.as_str()), Some("ON"));
    let clients = idp
        .list_user_pool_clients()
        .user_pool_id(pool_id)
        .send()
        .await
        .unwrap();
    let client = idp
        .describe_user_pool_client()
        .user_pool_id(pool_id)
        .client_id(clients.user_pool_clients()[0].client_id().unwrap())
        .send()
        .await
        .unwrap();
    let client = client.user_pool_client().unwrap();
    assert_eq!(client.refresh_token_validity(), 30 * 24 * 60, "minutes");
    assert!(client.client_secret().is_none());
    mentalspace_identity_pool(&c, pool_id, client.client_id().unwrap()).await;

    let rds = aws_sdk_rds::Client::new(&c);
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    let out = rds
        .describe_db_clusters()
        .db_cluster_identifier("mentalspace-ehr")
        .send()
        .await
        .unwrap();
    let cl = &out.db_clusters()[0];
    assert_eq!(cl.engine(), Some("aurora-postgresql"));
    assert_eq!(cl.engine_version(), Some("15.3"));
    assert_eq!(cl.database_name(), Some("mentalspaceehr"));
    assert_eq!(cl.master_username(), Some("postgres"));
    assert_eq!(cl.storage_encrypted(), Some(true));
    assert_eq!(cl.backup_retention_period(), Some(30));
    assert_eq!(cl.deletion_protection(), Some(true));
    assert_eq!(cl.enabled_cloudwatch_logs_exports(), ["postgresql"]);
    let scaling = cl.serverless_v2_scaling_configuration().unwrap();
    assert_eq!(scaling.min_capacity(), Some(0.5));
    assert_eq!(scaling.max_capacity(), Some(8.0));
    let mut members: Vec<(String, bool)> = cl
        .db_cluster_members()
        .iter()
        .map(|m| {
            (
                m.db_instance_identifier().unwrap().to_string(),
                m.is_cluster_writer().unwrap_or(false),
            )
        })
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            ("mentalspace-ehr-reader".to_string(), false),
            ("mentalspace-ehr-writer".to_string(), true)
        ]
    );
    let inst = rds
        .describe_db_instances()
        .db_instance_identifier("mentalspace-ehr-reader")
        .send()
        .await
        .unwrap();
    assert_eq!(
        inst.db_instances()[0].db_instance_class(),
        Some("db.serverless")
    );
    assert_eq!(secret_names(&sm).await, ["mentalspace-ehr-db-credentials"]);
    assert_eq!(
        secret_json(&sm, "mentalspace-ehr-db-credentials").await["username"],
        "postgres"
    );
    let state = p.state_json("mentalspace-ehr");
    let outputs = &state["outputs"];
    assert!(outputs["database_reader_endpoint"]
        .as_str()
        .unwrap()
        .contains(".cluster-ro-"));

    // Files: versioned, old versions deleted after 30 days. Videos: to Glacier
    // after 90 days, deleted after 365. Both SSE-S3, public access blocked.
    let s3 = s3(&moto).await;
    let files = bucket(&s3, "mentalspace-ehr-files-706704660887").await;
    assert_eq!(files.versioning, "Enabled");
    assert_eq!(files.sse.0, "AES256");
    assert_eq!(
        files.rules[0]
            .noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(30)
    );
    let videos = bucket(&s3, "mentalspace-ehr-videos-706704660887").await;
    assert_ne!(videos.versioning, "Enabled");
    assert_eq!(videos.sse.0, "AES256");
    let rule = &videos.rules[0];
    assert_eq!(rule.transitions()[0].days(), Some(90));
    assert_eq!(
        rule.transitions()[0].storage_class().unwrap().as_str(),
        "GLACIER"
    );
    assert_eq!(rule.expiration().unwrap().days(), Some(365));
    assert_eq!(
        state["outputs"]["files_bucket"],
        "mentalspace-ehr-files-706704660887"
    );
    mentalspace_video_cdn(&p, &moto, &s3).await;
    mentalspace_rest_api(&moto).await;

    destroy_without_guards(&p, &moto, "mentalspace-ehr").await;
    no_rest_api_left(&moto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn carebow_postgres_16_and_its_api_secrets() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("carebow");
    apply_and_replan(&p, &moto, "carebow");

    let c = moto.sdk().await;
    let rds = aws_sdk_rds::Client::new(&c);
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    let db = rds
        .describe_db_instances()
        .db_instance_identifier("carebow-db")
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    assert_eq!(db.engine_version(), Some("16.3"));
    assert_eq!(db.db_instance_class(), Some("db.t4g.medium"));
    assert_eq!(db.allocated_storage(), Some(50));
    assert_eq!(db.multi_az(), Some(true));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.backup_retention_period(), Some(7));
    assert_eq!(db.db_subnet_group().unwrap().subnets().len(), 3);

    // The PHI key: rotating, named alias/carebow-data, and the database's key.
    let kms = aws_sdk_kms::Client::new(&c);
    let alias = kms.list_aliases().send().await.unwrap();
    let alias = alias
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/carebow-data"))
        .expect("alias/carebow-data");
    let key = alias.target_key_id().unwrap();
    let rot = kms
        .get_key_rotation_status()
        .key_id(key)
        .send()
        .await
        .unwrap();
    assert!(rot.key_rotation_enabled());
    assert!(
        db.kms_key_id().is_some_and(|k| k.ends_with(key)),
        "database key {:?}, alias key {key}",
        db.kms_key_id()
    );
    // The reports bucket: SSE-KMS with the same key and a bucket key, versioned.
    let reports = bucket(&s3(&moto).await, "carebow-reports").await;
    assert_eq!(reports.versioning, "Enabled");
    assert_eq!(reports.sse.0, "aws:kms");
    assert!(
        reports.sse.1.as_deref().is_some_and(|k| k.ends_with(key)),
        "reports key {:?}, alias key {key}",
        reports.sse.1
    );
    assert!(reports.sse.2, "no bucket key");
    assert_eq!(
        secret_names(&sm).await,
        [
            "carebow/db-credentials",
            "carebow/jwt-secret",
            "carebow/openai-api-key",
            "carebow/stripe-secret-key"
        ]
    );
    // Keys set by hand: reconcile made the containers, with no value in them.
    let none = sm
        .get_secret_value()
        .secret_id("carebow/openai-api-key")
        .send()
        .await;
    assert!(none.is_err(), "an unmanaged secret got a value: {none:?}");

    // A person sets the Stripe key; that is not drift.
    sm.put_secret_value()
        .secret_id("carebow/stripe-secret-key")
        .secret_string("sk_live_set_by_a_person")
        .send()
        .await
        .unwrap();
    let r = p.run(
        Some(&moto),
        &["plan", "desired-state/carebow", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{}", r.all());

    destroy_without_guards(&p, &moto, "carebow").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vivale_secrets_and_a_secret_deleted_outside_is_restored() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("vivale");
    apply_and_replan(&p, &moto, "vivale");

    let c = moto.sdk().await;
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    assert_eq!(
        secret_names(&sm).await,
        [
            "vivale/database-encryption-key",
            "vivale/jwt-secret",
            "vivale/web-client-secret"
        ]
    );
    let key = secret_json(&sm, "vivale/database-encryption-key").await;
    assert_eq!(key["keyType"], "AES256");
    let k = key["key"].as_str().unwrap();
    assert_eq!(k.len(), 32);
    assert!(!k.contains(['"', '@', '/', '\\']));
    let jwt = secret_json(&sm, "vivale/jwt-secret").await;
    assert_eq!(jwt["username"], "admin");

    // Someone deletes the JWT secret (scheduled for deletion, recoverable).
    sm.delete_secret()
        .secret_id("vivale/jwt-secret")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let r = p.run(
        Some(&moto),
        &["plan", "desired-state/vivale", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("secret.jwt"), "{}", r.stdout);
    assert!(
        r.stdout.contains("deleted outside reconcile"),
        "{}",
        r.stdout
    );

    let r = p.run(
        Some(&moto),
        &["apply", "desired-state/vivale", "--auto-approve"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let d = sm
        .describe_secret()
        .secret_id("vivale/jwt-secret")
        .send()
        .await
        .unwrap();
    assert!(d.deleted_date().is_none(), "still scheduled for deletion");
    // Restored, not regenerated: the value the application signs with is kept.
    assert_eq!(secret_json(&sm, "vivale/jwt-secret").await, jwt);
    let r = p.run(
        Some(&moto),
        &["plan", "desired-state/vivale", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{}", r.all());

    // The three tables: on demand, point-in-time recovery, encrypted with the
    // AWS managed key, protected; patients streams new and old images.
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let mut indexes = vec![];
    for name in ["vivale-patients", "vivale-providers", "vivale-appointments"] {
        let t = ddb.describe_table().table_name(name).send().await.unwrap();
        let t = t.table().unwrap();
        assert_eq!(
            t.billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|m| m.as_str()),
            Some("PAY_PER_REQUEST"),
            "{name}"
        );
        assert_eq!(t.deletion_protection_enabled(), Some(true), "{name}");
        assert_eq!(
            t.sse_description()
                .and_then(|s| s.sse_type())
                .map(|s| s.as_str()),
            Some("KMS"),
            "{name}"
        );
        let backups = ddb
            .describe_continuous_backups()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .map(|s| s.as_str().to_string());
        assert_eq!(pitr.as_deref(), Some("ENABLED"), "{name}");
        let stream = t
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_string());
        let want = (name == "vivale-patients").then(|| "NEW_AND_OLD_IMAGES".to_string());
        assert_eq!(stream, want, "{name}");
        for g in t.global_secondary_indexes() {
            let keys: Vec<&str> = g.key_schema().iter().map(|k| k.attribute_name()).collect();
            indexes.push(format!(
                "{name}/{}: {}",
                g.index_name().unwrap(),
                keys.join(" ")
            ));
        }
        if name == "vivale-appointments" {
            let range = t
                .key_schema()
                .iter()
                .find(|k| k.key_type().as_str() == "RANGE");
            assert_eq!(range.map(|k| k.attribute_name()), Some("scheduledDateTime"));
        }
    }
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "vivale-appointments/PatientAppointmentsIndex: patientId scheduledDateTime",
            "vivale-appointments/ProviderAppointmentsIndex: providerId scheduledDateTime",
            "vivale-patients/EmailIndex: email",
        ]
    );

    destroy_without_guards(&p, &moto, "vivale").await;
}

/// The scalable targets and target tracking policies of ECS services, as an
/// independent client sees them: resource id -> (min, max), and resource id ->
/// (policy name, target value, metric, scale-in and scale-out cooldowns).
type Targets = std::collections::BTreeMap<String, (i32, i32)>;
type Policies = std::collections::BTreeMap<String, (String, f64, String, Option<i32>, Option<i32>)>;

async fn ecs_scaling(aas: &aws_sdk_applicationautoscaling::Client) -> (Targets, Policies) {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let t = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    let targets = t
        .scalable_targets()
        .iter()
        .filter(|t| t.scalable_dimension().as_str() == "ecs:service:DesiredCount")
        .map(|t| {
            (
                t.resource_id().to_string(),
                (t.min_capacity(), t.max_capacity()),
            )
        })
        .collect();
    let p = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    let policies = p
        .scaling_policies()
        .iter()
        .map(|p| {
            let tt = p.target_tracking_scaling_policy_configuration().unwrap();
            let metric = tt
                .predefined_metric_specification()
                .map(|m| m.predefined_metric_type().as_str().to_string())
                .unwrap_or_default();
            (
                p.resource_id().to_string(),
                (
                    p.policy_name().to_string(),
                    tt.target_value(),
                    metric,
                    tt.scale_in_cooldown(),
                    tt.scale_out_cooldown(),
                ),
            )
        })
        .collect();
    (targets, policies)
}

/// Moves a service's task count as the autoscaler would; the seed must still
/// plan clean, saying who manages the count.
async fn autoscaler_moves(p: &Project, moto: &Moto, name: &str, cluster: &str, service: &str) {
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk().await);
    ecs.update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(3)
        .send()
        .await
        .unwrap();
    let stack = format!("desired-state/{name}");
    let r = p.run(Some(moto), &["plan", &stack, "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("desired_count is managed by appautoscaling_target."),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_smart_keycloak_and_backend_scale_between_1_and_4_tasks_on_cpu() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    apply_and_replan(&p, &moto, "proxy-smart");

    let aas = aws_sdk_applicationautoscaling::Client::new(&moto.sdk().await);
    let (targets, policies) = ecs_scaling(&aas).await;
    let keycloak = "service/proxy-smart-production/proxy-smart-keycloak";
    let backend = "service/proxy-smart-production/proxy-smart-backend";
    assert_eq!(
        targets.into_iter().collect::<Vec<_>>(),
        [
            (backend.to_string(), (1, 4)),
            (keycloak.to_string(), (1, 4))
        ]
    );
    let cpu = |name: &str| {
        (
            name.to_string(),
            70.0,
            "ECSServiceAverageCPUUtilization".to_string(),
            Some(300),
            Some(60),
        )
    };
    assert_eq!(policies[keycloak], cpu("proxy-smart-keycloak-cpu"));
    assert_eq!(policies[backend], cpu("proxy-smart-backend-cpu"));
    assert_eq!(policies.len(), 2);

    autoscaler_moves(
        &p,
        &moto,
        "proxy-smart",
        "proxy-smart-production",
        "proxy-smart-keycloak",
    )
    .await;
    destroy_without_guards(&p, &moto, "proxy-smart").await;
    assert!(
        ecs_scaling(&aas).await.0.is_empty(),
        "targets survived destroy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn carebow_api_scales_between_2_and_10_tasks_on_cpu() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("carebow");
    apply_and_replan(&p, &moto, "carebow");

    let aas = aws_sdk_applicationautoscaling::Client::new(&moto.sdk().await);
    let (targets, policies) = ecs_scaling(&aas).await;
    let api = "service/carebow/carebow-api";
    assert_eq!(
        targets.into_iter().collect::<Vec<_>>(),
        [(api.to_string(), (2, 10))]
    );
    let (name, target, metric, _, _) = &policies[api];
    assert_eq!(name, "carebow-api-cpu");
    assert_eq!(*target, 70.0);
    assert_eq!(metric, "ECSServiceAverageCPUUtilization");

    autoscaler_moves(&p, &moto, "carebow", "carebow", "carebow-api").await;
    destroy_without_guards(&p, &moto, "carebow").await;
    assert!(
        ecs_scaling(&aas).await.0.is_empty(),
        "targets survived destroy"
    );
}

/// The alarms whose names begin with `prefix`, in name order.
async fn alarms_of(
    cw: &aws_sdk_cloudwatch::Client,
    prefix: &str,
) -> Vec<aws_sdk_cloudwatch::types::MetricAlarm> {
    let out = cw
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut alarms = out.metric_alarms().to_vec();
    alarms.sort_by(|a, b| a.alarm_name().cmp(&b.alarm_name()));
    alarms
}

fn dimensions(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Vec<(String, String)> {
    let mut d: Vec<(String, String)> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap().into(), d.value().unwrap().into()))
        .collect();
    d.sort();
    d
}

/// The email endpoints subscribed to the topic named `name`, and its ARN.
async fn topic_emails(sns: &aws_sdk_sns::Client, name: &str) -> (String, Vec<String>) {
    let topics = sns.list_topics().send().await.unwrap();
    let arn = topics
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .find(|a| a.ends_with(&format!(":{name}")))
        .unwrap_or_else(|| panic!("no topic {name}"))
        .to_string();
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(&arn)
        .send()
        .await
        .unwrap();
    let emails = subs
        .subscriptions()
        .iter()
        .filter(|s| s.protocol() == Some("email"))
        .filter_map(|s| s.endpoint().map(str::to_string))
        .collect();
    (arn, emails)
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_smart_keycloak_alarms_watch_its_load_balancer_and_page_one_topic() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    apply_and_replan(&p, &moto, "proxy-smart");

    let c = moto.sdk().await;
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&c);
    let lb = elbv2
        .describe_load_balancers()
        .names("proxy-smart-keycloak")
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let tg = elbv2
        .describe_target_groups()
        .names("proxy-smart-keycloak")
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    // CloudWatch's names for them: the ARN after "loadbalancer/", and after the last ":".
    let lb_dim = lb_arn.split_once(":loadbalancer/").unwrap().1.to_string();
    let tg_dim = tg_arn.rsplit(':').next().unwrap().to_string();
    assert!(lb_dim.starts_with("app/proxy-smart-keycloak/"), "{lb_dim}");
    assert!(
        tg_dim.starts_with("targetgroup/proxy-smart-keycloak/"),
        "{tg_dim}"
    );

    let (topic, emails) = topic_emails(&aws_sdk_sns::Client::new(&c), "proxy-smart-alarms").await;
    assert_eq!(emails, ["ops@maxhealth.tech"]);

    let cw = aws_sdk_cloudwatch::Client::new(&c);
    let alarms = alarms_of(&cw, "proxy-smart-keycloak-").await;
    let seen: Vec<_> = alarms
        .iter()
        .map(|a| {
            (
                a.alarm_name().unwrap(),
                a.metric_name().unwrap(),
                a.statistic().unwrap().as_str(),
                a.period().unwrap(),
                a.evaluation_periods().unwrap(),
                a.threshold().unwrap(),
                a.comparison_operator().unwrap().as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "proxy-smart-keycloak-5xx",
                "HTTPCode_ELB_5XX_Count",
                "Sum",
                300,
                2,
                10.0,
                "GreaterThanOrEqualToThreshold"
            ),
            (
                "proxy-smart-keycloak-latency",
                "TargetResponseTime",
                "Average",
                300,
                3,
                2.0,
                "GreaterThanThreshold"
            ),
            (
                "proxy-smart-keycloak-unhealthy-hosts",
                "UnHealthyHostCount",
                "Average",
                300,
                2,
                1.0,
                "GreaterThanOrEqualToThreshold"
            ),
        ]
    );
    let lb_only = vec![("LoadBalancer".to_string(), lb_dim.clone())];
    assert_eq!(dimensions(&alarms[0]), lb_only);
    assert_eq!(dimensions(&alarms[1]), lb_only);
    assert_eq!(
        dimensions(&alarms[2]),
        [
            ("LoadBalancer".to_string(), lb_dim),
            ("TargetGroup".to_string(), tg_dim)
        ]
    );
    for a in &alarms {
        assert_eq!(
            a.alarm_actions(),
            std::slice::from_ref(&topic),
            "{:?}",
            a.alarm_name()
        );
        assert_eq!(a.namespace(), Some("AWS/ApplicationELB"));
    }

    destroy_without_guards(&p, &moto, "proxy-smart").await;
    assert!(alarms_of(&cw, "proxy-smart-").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn carebow_database_alarms_on_cpu_and_free_storage() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("carebow");
    apply_and_replan(&p, &moto, "carebow");

    let c = moto.sdk().await;
    let (topic, emails) = topic_emails(&aws_sdk_sns::Client::new(&c), "carebow-alarms").await;
    assert_eq!(emails, ["ops@carebow.com"]);
    let cw = aws_sdk_cloudwatch::Client::new(&c);
    let alarms = alarms_of(&cw, "carebow-db-").await;
    let names: Vec<_> = alarms.iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(names, ["carebow-db-cpu", "carebow-db-free-storage"]);
    for a in &alarms {
        assert_eq!(a.namespace(), Some("AWS/RDS"));
        assert_eq!(
            dimensions(a),
            [("DBInstanceIdentifier".to_string(), "carebow-db".to_string())]
        );
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic));
    }
    let (cpu, storage) = (&alarms[0], &alarms[1]);
    assert_eq!(cpu.metric_name(), Some("CPUUtilization"));
    assert_eq!(cpu.threshold(), Some(80.0));
    assert_eq!(storage.metric_name(), Some("FreeStorageSpace"));
    assert_eq!(storage.statistic().map(|s| s.as_str()), Some("Minimum"));
    assert_eq!(storage.threshold(), Some(5_368_709_120.0));
    assert_eq!(
        storage.comparison_operator().map(|o| o.as_str()),
        Some("LessThanThreshold")
    );
    assert_eq!(storage.treat_missing_data(), Some("breaching"));

    // Lowered by hand to stay quiet: drift on the threshold, put back by apply.
    cw.put_metric_alarm()
        .alarm_name("carebow-db-cpu")
        .alarm_description(cpu.alarm_description().unwrap())
        .namespace("AWS/RDS")
        .metric_name("CPUUtilization")
        .set_dimensions(Some(cpu.dimensions().to_vec()))
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(300)
        .evaluation_periods(3)
        .threshold(99.0)
        .comparison_operator(cpu.comparison_operator().unwrap().clone())
        .set_alarm_actions(Some(cpu.alarm_actions().to_vec()))
        .set_ok_actions(Some(cpu.ok_actions().to_vec()))
        .send()
        .await
        .unwrap();
    let r = p.run(
        Some(&moto),
        &["plan", "desired-state/carebow", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("cloudwatch_alarm.db_cpu"), "{}", r.stdout);
    apply_and_replan(&p, &moto, "carebow");
    assert_eq!(
        alarms_of(&cw, "carebow-db-cpu").await[0].threshold(),
        Some(80.0)
    );

    destroy_without_guards(&p, &moto, "carebow").await;
    assert!(alarms_of(&cw, "carebow-").await.is_empty());
}

/// Vivale's sign-in: the pool as the CDK stack makes it, the confidential web
/// client whose secret lands in Secrets Manager and nowhere else, and a change
/// that would replace the protected pool refused with the field named.
#[tokio::test(flavor = "multi_thread")]
async fn vivale_user_pool_and_web_client() {
    use aws_sdk_cognitoidentityprovider::types::UserPoolMfaType;
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("vivale");
    apply_and_replan(&p, &moto, "vivale");

    let c = moto.sdk().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&c);
    let pools = idp.list_user_pools().max_results(60).send().await.unwrap();
    let pool = pools
        .user_pools()
        .iter()
        .find(|p| p.name() == Some("vivale-healthcare-users"))
        .expect("the user pool");
    let id = pool.id().unwrap();
    let d = idp
        .describe_user_pool()
        .user_pool_id(id)
        .send()
        .await
        .unwrap();
    let up = d.user_pool().unwrap();
    assert_eq!(up.username_attributes()[0].as_str(), "email");
    let policy = up.policies().unwrap().password_policy().unwrap();
    assert_eq!(policy.minimum_length(), Some(8));
    assert!(policy.require_symbols());
    let custom: Vec<&str> = up
        .schema_attributes()
        .iter()
        .filter_map(|a| a.name())
        .filter(|n| n.starts_with("custom:"))
        .collect();
    assert_eq!(
        custom,
        ["custom:role", "custom:patientId", "custom:providerId"]
    );
    let mfa = idp
        .get_user_pool_mfa_config()
        .user_pool_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(mfa.mfa_configuration(), Some(&UserPoolMfaType::Optional));
    assert!(mfa.software_token_mfa_configuration().unwrap().enabled());
    assert!(mfa.sms_mfa_configuration().is_some());

    let clients = idp
        .list_user_pool_clients()
        .user_pool_id(id)
        .send()
        .await
        .unwrap();
    let client_id = clients.user_pool_clients()[0].client_id().unwrap();
    let client = idp
        .describe_user_pool_client()
        .user_pool_id(id)
        .client_id(client_id)
        .send()
        .await
        .unwrap();
    let client = client.user_pool_client().unwrap();
    assert_eq!(client.client_name(), Some("vivale-web-client"));
    assert_eq!(client.callback_urls().len(), 2);
    let client_secret = client.client_secret().expect("a client secret").to_string();
    let sm = aws_sdk_secretsmanager::Client::new(&c);
    let stored = sm
        .get_secret_value()
        .secret_id("vivale/web-client-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string(), Some(client_secret.as_str()));
    for entry in std::fs::read_dir(p.state_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !text.contains(&client_secret),
            "the client secret is in state"
        );
    }

    // Signing in with a phone number instead needs a new pool: refused while protected.
    let auth = p.path().join("desired-state/vivale/auth.toml");
    let text = std::fs::read_to_string(&auth).unwrap();
    std::fs::write(
        &auth,
        text.replace(
            "username_attributes      = [\"email\"]",
            "username_attributes      = [\"phone_number\"]",
        ),
    )
    .unwrap();
    let r = p.run(Some(&moto), &["plan", "desired-state/vivale"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("cognito_user_pool.users"), "{}", r.all());
    assert!(r.all().contains("username_attributes"), "{}", r.all());
    assert!(r.all().contains("protect"), "{}", r.all());
    std::fs::write(&auth, text).unwrap();
    vivale_rest_api(&moto).await;

    destroy_without_guards(&p, &moto, "vivale").await;
    no_rest_api_left(&moto).await;
    let pools = idp.list_user_pools().max_results(60).send().await.unwrap();
    assert!(pools.user_pools().is_empty(), "{:?}", pools.user_pools());
}

/// MentalSpace's videos through CloudFront: HTTPS only, PriceClass_100, the
/// CachingOptimized policy, the private videos bucket as origin through an
/// origin access control, and a bucket policy letting only this distribution
/// read; its domain is the VITE_VIDEO_CDN output.
async fn mentalspace_video_cdn(p: &Project, moto: &Moto, s3: &aws_sdk_s3::Client) {
    let cf = aws_sdk_cloudfront::Client::new(&moto.sdk().await);
    let state = p.state_json("mentalspace-ehr");
    let id = state["resources"]["cloudfront_distribution.videos"]["id"]
        .as_str()
        .expect("distribution in state");
    let d = cf
        .get_distribution()
        .id(id)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap();
    assert_eq!(d.status, "Deployed");
    let c = d.distribution_config.as_ref().unwrap();
    assert!(c.enabled);
    assert_eq!(c.price_class.as_ref().unwrap().as_str(), "PriceClass_100");
    let origin = &c.origins.as_ref().unwrap().items[0];
    assert_eq!(
        origin.domain_name,
        "mentalspace-ehr-videos-706704660887.s3.us-east-1.amazonaws.com"
    );
    let b = c.default_cache_behavior.as_ref().unwrap();
    assert_eq!(b.target_origin_id, origin.id);
    assert_eq!(b.viewer_protocol_policy.as_str(), "https-only");
    assert_eq!(
        b.cache_policy_id.as_deref(),
        Some("658327ea-f89d-4fab-a63d-7e88639e58f6")
    );
    assert_eq!(
        state["outputs"]["video_cdn"],
        format!("https://{}", d.domain_name)
    );

    let oac_id = state["resources"]["cloudfront_origin_access_control.videos"]["id"]
        .as_str()
        .expect("origin access control in state");
    let oac = cf
        .get_origin_access_control()
        .id(oac_id)
        .send()
        .await
        .unwrap()
        .origin_access_control
        .unwrap()
        .origin_access_control_config
        .unwrap();
    assert_eq!(oac.origin_access_control_origin_type.as_str(), "s3");
    assert_eq!(oac.signing_behavior.as_str(), "always");

    let policy = s3
        .get_bucket_policy()
        .bucket("mentalspace-ehr-videos-706704660887")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let st = &policy["Statement"][0];
    assert_eq!(st["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(st["Condition"]["StringEquals"]["AWS:SourceArn"], d.arn);
    assert_eq!(
        st["Resource"],
        "arn:aws:s3:::mentalspace-ehr-videos-706704660887/*"
    );
}

/// The one REST API named `name` with its resources (methods embedded) and
/// its `prod` stage.
async fn rest_api(
    moto: &Moto,
    name: &str,
) -> (
    aws_sdk_apigateway::types::RestApi,
    Vec<aws_sdk_apigateway::types::Resource>,
    aws_sdk_apigateway::operation::get_stage::GetStageOutput,
) {
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let apis = gw.get_rest_apis().send().await.unwrap();
    let found: Vec<_> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(name))
        .cloned()
        .collect();
    assert_eq!(found.len(), 1, "one API named {name}");
    let id = found[0].id().unwrap();
    let tree = gw
        .get_resources()
        .rest_api_id(id)
        .embed("methods")
        .send()
        .await
        .unwrap();
    let stage = gw
        .get_stage()
        .rest_api_id(id)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    (found[0].clone(), tree.items().to_vec(), stage)
}

/// The methods of `path`, with their authorization type.
fn methods_of(tree: &[aws_sdk_apigateway::types::Resource], path: &str) -> Vec<(String, String)> {
    let r = tree
        .iter()
        .find(|r| r.path() == Some(path))
        .unwrap_or_else(|| panic!("no resource {path}"));
    let mut m: Vec<(String, String)> = r
        .resource_methods()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.authorization_type().unwrap_or("").to_string()))
        .collect();
    m.sort();
    m
}

/// MentalSpace's REST API: `prod` throttled 2000/5000 with INFO logs and
/// access logs, the Cognito authorizer on the stack's pool, `/health` open,
/// the patient routes protected, CORS preflights for the app's origins, and
/// the account's CloudWatch role.
async fn mentalspace_rest_api(moto: &Moto) {
    let (api, tree, stage) = rest_api(moto, "mentalspace-ehr-api").await;
    assert_eq!(
        api.endpoint_configuration().unwrap().types()[0].as_str(),
        "REGIONAL"
    );
    let all = &stage.method_settings().unwrap()["*/*"];
    assert_eq!(all.throttling_rate_limit(), 2000.0);
    assert_eq!(all.throttling_burst_limit(), 5000);
    assert_eq!(all.logging_level(), Some("INFO"));
    assert!(!all.data_trace_enabled(), "no PHI in logs");
    assert!(stage
        .access_log_settings()
        .and_then(|l| l.destination_arn())
        .unwrap()
        .contains("log-group:/mentalspace-ehr/api-access"));
    assert_eq!(
        methods_of(&tree, "/health"),
        [
            ("GET".into(), "NONE".into()),
            ("OPTIONS".into(), "NONE".into())
        ]
    );
    for path in ["/patients", "/patients/{id}"] {
        assert_eq!(
            methods_of(&tree, path),
            [
                ("ANY".into(), "COGNITO_USER_POOLS".into()),
                ("OPTIONS".into(), "NONE".into())
            ]
        );
    }
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let auths = gw
        .get_authorizers()
        .rest_api_id(api.id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(auths.items().len(), 1);
    assert!(auths.items()[0].provider_arns()[0].contains(":userpool/"));
    let role = gw.get_account().send().await.unwrap();
    assert!(role
        .cloudwatch_role_arn()
        .unwrap()
        .ends_with(":role/mentalspace-ehr-apigateway-logs"));
}

/// Vivalé's REST API: its name and description, the three resources with only
/// their CORS preflights (all origins, all methods, the four headers), `prod`.
async fn vivale_rest_api(moto: &Moto) {
    let (api, tree, stage) = rest_api(moto, "Vivalé Healthcare API").await;
    assert_eq!(api.description(), Some("Healthcare management API"));
    assert!(stage.deployment_id().is_some());
    for path in ["/patients", "/providers", "/appointments"] {
        assert_eq!(methods_of(&tree, path), [("OPTIONS".into(), "NONE".into())]);
        let r = tree.iter().find(|r| r.path() == Some(path)).unwrap();
        let i = r.resource_methods().unwrap()["OPTIONS"]
            .method_integration()
            .unwrap();
        let params = i.integration_responses().unwrap()["200"]
            .response_parameters()
            .unwrap();
        assert_eq!(
            params["method.response.header.Access-Control-Allow-Origin"],
            "'*'"
        );
        assert_eq!(
            params["method.response.header.Access-Control-Allow-Headers"],
            "'Content-Type,Authorization,X-Amz-Date,X-Api-Key'"
        );
        assert_eq!(
            params["method.response.header.Access-Control-Allow-Methods"],
            "'OPTIONS,GET,PUT,POST,DELETE,PATCH,HEAD'"
        );
    }
}

/// After a destroy: no REST API is left (the Tagging API does not list them).
async fn no_rest_api_left(moto: &Moto) {
    let gw = aws_sdk_apigateway::Client::new(&moto.sdk().await);
    let apis = gw.get_rest_apis().send().await.unwrap();
    assert!(apis.items().is_empty(), "{:?}", apis.items());
}
