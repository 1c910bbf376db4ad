//! The deployment template (`infra/template.yaml`): cfn-lint passes with no error or
//! warning, and the security and reliability properties the operator relies on hold:
//! the metering event source mapping bisects and gives up after finite retries, every
//! table is encrypted with point-in-time recovery, every bucket blocks public access and
//! refuses plain HTTP, no IAM statement allows everything, each named metric has an alarm,
//! and the Glue table's columns are the `schemas` crate's.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml::Value;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(repository().join("infra/template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn resources(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

fn of_type(template: &Value, kind: &str) -> Vec<(String, Value)> {
    resources(template)
        .into_iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .collect()
}

/// The value of a short-form intrinsic (`!Ref X`, `!GetAtt X.Arn`), as (tag, text).
fn intrinsic(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string(),
            tagged.value.as_str().map(str::to_owned).unwrap_or_default(),
        )),
        _ => None,
    }
}

/// A number, or a `!Ref` to a parameter resolved to its default.
fn number_or_default(template: &Value, value: &Value) -> i64 {
    if let Some(number) = value.as_i64() {
        return number;
    }
    let (tag, parameter) = intrinsic(value).expect("a number or a !Ref");
    assert_eq!(tag, "!Ref");
    template["Parameters"][parameter.as_str()]["Default"]
        .as_i64()
        .unwrap_or_else(|| panic!("parameter {parameter} has a numeric default"))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|item| item.as_str().unwrap_or("").to_owned())
            .collect(),
        Value::String(text) => vec![text.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn cfn_lint_passes_with_no_error_or_warning() {
    let cfn_lint = std::env::var("TOLLGATE_TEST_CFN_LINT").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_CFN_LINT is not set: run the suite with `bash scripts/test.sh`, or export \
             TOLLGATE_TEST_CFN_LINT=$(tests/clients/cfn_lint.sh)"
        )
    });
    let output = std::process::Command::new(cfn_lint)
        .arg("--")
        .arg(repository().join("infra/template.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_metering_mappings_bisect_report_item_failures_and_give_up_in_finite_time() {
    let template = template();
    let mappings = of_type(&template, "AWS::Lambda::EventSourceMapping");
    let names: Vec<&str> = mappings.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["MeteringEventSourceMapping", "ParquetEventSourceMapping"]
    );
    for (_, mapping) in &mappings {
        a_mapping_bisects_reports_item_failures_and_gives_up(&template, &mapping["Properties"]);
    }
    // Two consumers of the stream: counting in short batches (limits stay current), Parquet
    // in long ones (one file per shard and day per invocation).
    let all = resources(&template);
    let role = |function: &str| {
        all[function]["Properties"]["Environment"]["Variables"]["TOLLGATE_METERING_ROLE"].clone()
    };
    assert_eq!(role("MeteringFunction"), "counters");
    assert_eq!(role("ParquetFunction"), "parquet");
    let window = |mapping: &str| {
        number_or_default(
            &template,
            &all[mapping]["Properties"]["MaximumBatchingWindowInSeconds"],
        )
    };
    // Counting batches are applied whole: a window of a few seconds amortises each cell
    // write over the batch (docs/cost.md, bench/simulate.sh) while limits stay seconds behind.
    assert!((1..=5).contains(&window("MeteringEventSourceMapping")));
    assert_eq!(window("ParquetEventSourceMapping"), 300);
    assert!(
        number_or_default(
            &template,
            &all["ParquetEventSourceMapping"]["Properties"]["BatchSize"]
        ) >= 1000
    );
}

fn a_mapping_bisects_reports_item_failures_and_gives_up(template: &Value, properties: &Value) {
    let template = template.clone();
    assert_eq!(properties["BisectBatchOnFunctionError"], Value::Bool(true));
    assert!(
        strings(&properties["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into())
    );
    let retries = number_or_default(&template, &properties["MaximumRetryAttempts"]);
    assert!((0..=10_000).contains(&retries), "finite retries: {retries}");
    let retries_parameter = intrinsic(&properties["MaximumRetryAttempts"]).unwrap().1;
    assert!(
        template["Parameters"][retries_parameter.as_str()]["MinValue"].as_i64() >= Some(0),
        "the parameter cannot be set to -1 (infinite)"
    );
    // The age comes from a mapping of allowed hours: every value is finite and at most a week.
    let ages: Vec<i64> = template["Mappings"]["HoursToSeconds"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|entry| entry["Seconds"].as_i64().unwrap())
        .collect();
    assert!(
        !ages.is_empty() && ages.iter().all(|age| (60..=604_800).contains(age)),
        "{ages:?}"
    );
    let allowed_hours: Vec<i64> = template["Parameters"]["MaxRecordAgeHours"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|value| value.as_i64().unwrap())
        .collect();
    assert!(!allowed_hours.is_empty());
    for hours in &allowed_hours {
        assert_eq!(
            template["Mappings"]["HoursToSeconds"][hours.to_string().as_str()]["Seconds"].as_i64(),
            Some(hours * 3600)
        );
    }
    let destination =
        intrinsic(&properties["DestinationConfig"]["OnFailure"]["Destination"]).unwrap();
    assert_eq!(destination.0, "!GetAtt");
    let bucket = destination.1.trim_end_matches(".Arn");
    assert_eq!(
        resources(&template)[bucket]["Type"],
        "AWS::S3::Bucket",
        "an S3 on-failure destination"
    );
    assert!(number_or_default(&template, &properties["BatchSize"]) > 1);
    assert!(number_or_default(&template, &properties["MaximumBatchingWindowInSeconds"]) > 0);
    assert_eq!(
        properties["ParallelizationFactor"], 1,
        "one writer per shard"
    );
    // Dedupe marks outlive a record's last possible delivery: 24 h of stream plus the age.
    let retention_days = template["Parameters"]["DedupeRetentionDays"]["Default"]
        .as_i64()
        .unwrap();
    let longest_age_hours = allowed_hours.iter().max().unwrap();
    assert!(retention_days * 24 >= 24 + longest_age_hours);
}

#[test]
fn every_table_is_on_demand_encrypted_and_recoverable() {
    let template = template();
    let tables = of_type(&template, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 2);
    for (name, table) in &tables {
        let properties = &table["Properties"];
        assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "{name}");
        assert_eq!(
            properties["SSESpecification"]["SSEEnabled"],
            Value::Bool(true),
            "{name}"
        );
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            Value::Bool(true),
            "{name}"
        );
        assert_eq!(
            table["DeletionPolicy"], "Retain",
            "{name} outlives the stack"
        );
    }
    let counters = &resources(&template)["CountersTable"]["Properties"];
    assert_eq!(
        counters["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    assert_eq!(
        counters["TimeToLiveSpecification"]["Enabled"],
        Value::Bool(true)
    );
}

#[test]
fn every_bucket_blocks_public_access_uses_kms_and_refuses_plain_http() {
    let template = template();
    let buckets = of_type(&template, "AWS::S3::Bucket");
    assert!(buckets.len() >= 2);
    let policies = of_type(&template, "AWS::S3::BucketPolicy");
    for (name, bucket) in &buckets {
        let properties = &bucket["Properties"];
        let block = &properties["PublicAccessBlockConfiguration"];
        for setting in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[setting], Value::Bool(true), "{name} {setting}");
        }
        let encryption = &properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
        assert_eq!(encryption["SSEAlgorithm"], "aws:kms", "{name}");
        assert!(
            !properties["LifecycleConfiguration"]["Rules"]
                .as_sequence()
                .unwrap()
                .is_empty(),
            "{name} has lifecycle rules"
        );
        let tls_only = policies.iter().any(|(_, policy)| {
            let policy = &policy["Properties"];
            intrinsic(&policy["Bucket"]).is_some_and(|(_, target)| target == *name)
                && policy["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|statement| {
                        statement["Effect"] == "Deny"
                            && statement["Principal"] == "*"
                            && statement["Action"] == "s3:*"
                            && statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                    })
        });
        assert!(tls_only, "{name} has a TLS-only bucket policy");
    }
}

/// Every IAM policy statement of roles, functions and managed policies.
fn iam_statements(template: &Value) -> Vec<(String, Value)> {
    let mut statements = Vec::new();
    for (name, resource) in resources(template) {
        let documents: Vec<Value> = match resource["Type"].as_str().unwrap() {
            "AWS::IAM::Role" => resource["Properties"]["Policies"]
                .as_sequence()
                .map(|policies| {
                    policies
                        .iter()
                        .map(|policy| policy["PolicyDocument"].clone())
                        .collect()
                })
                .unwrap_or_default(),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                vec![resource["Properties"]["PolicyDocument"].clone()]
            }
            "AWS::Serverless::Function" => resource["Properties"]["Policies"]
                .as_sequence()
                .map(|policies| {
                    policies
                        .iter()
                        .filter(|policy| policy.is_mapping())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for document in documents {
            for statement in document["Statement"].as_sequence().unwrap() {
                statements.push((name.clone(), statement.clone()));
            }
        }
    }
    statements
}

#[test]
fn no_iam_statement_allows_everything_and_functions_name_their_resources() {
    let template = template();
    let statements = iam_statements(&template);
    assert!(
        statements.len() > 20,
        "policies were found: {}",
        statements.len()
    );
    for (owner, statement) in &statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions = strings(&statement["Action"]);
        assert!(!actions.is_empty(), "{owner}: {statement:?}");
        assert!(
            actions
                .iter()
                .all(|action| action != "*" && !action.ends_with(":*")),
            "{owner} allows every action of a service: {statement:?}"
        );
        assert!(
            statement["Resource"] != "*",
            "{owner} allows {actions:?} on every resource"
        );
    }
    // Functions use only inline statements (no broad managed policies).
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        for policy in function["Properties"]["Policies"].as_sequence().unwrap() {
            assert!(policy.is_mapping(), "{name} uses a named policy {policy:?}");
        }
    }
    // The key policy delegates to the account's IAM, and lets only CloudWatch (for alarms
    // on the encrypted topic, from this account) use the key directly.
    for (name, key) in of_type(&template, "AWS::KMS::Key") {
        assert_eq!(
            key["Properties"]["EnableKeyRotation"],
            Value::Bool(true),
            "{name}"
        );
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
            .as_sequence()
            .unwrap()
        {
            if let Some((_, principal)) = intrinsic(&statement["Principal"]["AWS"]) {
                assert!(principal.ends_with(":root"), "{name}: {statement:?}");
            } else {
                assert_eq!(
                    statement["Principal"]["Service"],
                    "cloudwatch.amazonaws.com"
                );
                let actions = strings(&statement["Action"]);
                assert!(
                    actions.iter().all(|action| !action.ends_with(":*")),
                    "{actions:?}"
                );
                assert!(
                    intrinsic(&statement["Condition"]["StringEquals"]["aws:SourceAccount"])
                        .is_some()
                );
            }
        }
    }
}

#[test]
fn each_named_metric_has_an_alarm_that_notifies_the_topic() {
    let template = template();
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    let alarmed: BTreeSet<(String, String)> = alarms
        .iter()
        .map(|(_, alarm)| {
            let properties = &alarm["Properties"];
            assert!(
                properties["AlarmActions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|action| intrinsic(action)
                        .is_some_and(|(_, target)| target == "NotificationTopic")),
                "{properties:?}"
            );
            (
                properties["Namespace"].as_str().unwrap().to_owned(),
                properties["MetricName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (namespace, metric) in [
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        ("Tollgate", "RecordsQuarantined"),
        ("AWS/Lambda", "OnFailureDestinationDeliveredEventCount"),
    ] {
        assert!(
            alarmed.contains(&(namespace.to_owned(), metric.to_owned())),
            "no alarm on {namespace} {metric}: {alarmed:?}"
        );
    }
    // The quarantine metric is the one the metering Lambda writes.
    let line = metering::lambda::embedded_metrics(&metering::PassReport::default(), 0, 0);
    assert!(line.contains("\"RecordsQuarantined\"") && line.contains("\"Namespace\":\"Tollgate\""));
}

#[test]
fn the_glue_table_is_the_schemas_crate_with_day_partition_projection() {
    let template = template();
    let table = &resources(&template)["UsageEventsTable"]["Properties"]["TableInput"];
    let columns: Vec<(String, String)> = table["StorageDescriptor"]["Columns"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|column| {
            (
                column["Name"].as_str().unwrap().to_owned(),
                column["Type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = schemas::usage_event::usage_event_glue_columns()
        .into_iter()
        .map(|(name, kind)| (name, kind.to_owned()))
        .collect();
    assert_eq!(columns, expected);
    assert_eq!(table["PartitionKeys"][0]["Name"], "dt");
    assert_eq!(table["Parameters"]["projection.enabled"], "true");
    assert_eq!(table["Parameters"]["projection.dt.format"], "yyyy-MM-dd");
    assert_eq!(
        table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
}

#[test]
fn the_named_queries_are_the_checked_athena_files() {
    let template = template();
    let deployed: BTreeSet<String> = of_type(&template, "AWS::Athena::NamedQuery")
        .iter()
        .map(|(_, query)| {
            query["Properties"]["QueryString"]
                .as_str()
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    let mut files = 0;
    for entry in std::fs::read_dir(repository().join("infra/athena")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "sql") {
            files += 1;
            let sql = std::fs::read_to_string(&path).unwrap();
            assert!(
                deployed.contains(sql.trim()),
                "{} is not deployed as written",
                path.display()
            );
        }
    }
    assert_eq!(files, 7);
    assert_eq!(deployed.len(), files);
}

#[test]
fn the_api_keeps_the_spec_endpoint_and_streams_from_the_arm64_functions() {
    let template = template();
    assert_eq!(template["Parameters"]["StageName"]["Default"], "prod");
    let all = resources(&template);
    assert_eq!(all["BedrockResource"]["Properties"]["PathPart"], "bedrock");
    assert_eq!(all["AdminResource"]["Properties"]["PathPart"], "admin");
    assert_eq!(
        all["AdminProxyResource"]["Properties"]["PathPart"],
        "{proxy+}"
    );
    assert_eq!(all["UsageResource"]["Properties"]["PathPart"], "usage");
    assert_eq!(
        all["MessagesResource"]["Properties"]["PathPart"],
        "messages"
    );
    let mut methods = Vec::new();
    for (name, method) in of_type(&template, "AWS::ApiGateway::Method") {
        let integration = &method["Properties"]["Integration"];
        methods.push((
            name.clone(),
            method["Properties"]["HttpMethod"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
        assert_eq!(integration["Type"], "AWS_PROXY", "{name}");
        assert_eq!(integration["ResponseTransferMode"], "STREAM", "{name}");
        let uri = intrinsic(&integration["Uri"]).unwrap().1;
        assert!(
            uri.ends_with("/response-streaming-invocations"),
            "{name}: {uri}"
        );
    }
    methods.sort();
    let expected: Vec<(String, String)> = [
        ("AdminAnyMethod", "ANY"),
        ("AdminRootMethod", "GET"),
        ("BedrockPostMethod", "POST"),
        ("ChatCompletionsPostMethod", "POST"),
        ("CountTokensPostMethod", "POST"),
        ("MessagesPostMethod", "POST"),
        ("ModelOperationPostMethod", "POST"),
        ("ModelsGetMethod", "GET"),
        ("UsageGetMethod", "GET"),
    ]
    .iter()
    .map(|(name, method)| ((*name).to_owned(), (*method).to_owned()))
    .collect();
    assert_eq!(
        methods, expected,
        "the spec's, Bedrock's, Anthropic's, OpenAI's, the admin and usage routes"
    );
    let function = &template["Globals"]["Function"];
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(
        strings(&function["Architectures"]),
        vec!["arm64".to_owned()]
    );
    let proxy = &all["ProxyFunction"]["Properties"];
    assert_eq!(intrinsic(&proxy["MemorySize"]).unwrap().1, "ProxyMemoryMB");
    assert_eq!(
        intrinsic(&proxy["Timeout"]).unwrap().1,
        "ProxyTimeoutSeconds"
    );
}

#[test]
fn the_stream_archive_and_schedule_are_as_documented() {
    let template = template();
    let all = resources(&template);
    let stream = &all["UsageStream"]["Properties"];
    assert_eq!(stream["StreamModeDetails"]["StreamMode"], "ON_DEMAND");
    assert_eq!(stream["StreamEncryption"]["EncryptionType"], "KMS");
    let archive = &all["ArchiveDeliveryStream"]["Properties"];
    assert_eq!(archive["DeliveryStreamType"], "KinesisStreamAsSource");
    let destination = &archive["ExtendedS3DestinationConfiguration"];
    assert_eq!(destination["CompressionFormat"], "GZIP");
    let prefix = destination["Prefix"].as_str().unwrap();
    assert!(
        prefix.starts_with(&format!("{}/dt=", metering::object_keys::ARCHIVE_PREFIX)),
        "replay and reconcile read the archive under {}/: {prefix}",
        metering::object_keys::ARCHIVE_PREFIX
    );
    // The functions write no Firehose (the delivery stream reads the stream itself), and
    // the archive's location is set on its own, to where that delivery stream writes.
    let environment = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(environment["TOLLGATE_FIREHOSE_STREAM"], "");
    assert_eq!(
        intrinsic(&environment["TOLLGATE_ARCHIVE_BUCKET"]),
        Some(("!Ref".to_owned(), "DataBucket".to_owned()))
    );
    assert_eq!(
        intrinsic(&destination["BucketARN"]),
        Some(("!GetAtt".to_owned(), "DataBucket.Arn".to_owned()))
    );
    assert_eq!(
        Some(format!(
            "{}/",
            environment["TOLLGATE_ARCHIVE_PREFIX"].as_str().unwrap()
        )),
        prefix.split_once("dt=").map(|(head, _)| head.to_owned()),
        "TOLLGATE_ARCHIVE_PREFIX is the delivery stream's prefix"
    );
    let schedule = &all["CompactSchedule"]["Properties"];
    assert_eq!(
        schedule["ScheduleExpression"], "cron(0 * * * ? *)",
        "hourly"
    );
    assert_eq!(schedule["ScheduleExpressionTimezone"], "UTC");
    for output in [
        "ApiUrl",
        "DataBucketName",
        "GlueDatabaseName",
        "GlueTableName",
        "RegistryTableName",
        "CountersTableName",
    ] {
        assert!(template["Outputs"][output].is_mapping(), "output {output}");
    }
}

#[test]
fn the_deploy_script_builds_for_arm64_and_deploys_the_template_with_the_operators_names() {
    let script = repository().join("infra/deploy.sh");
    let dry_run = std::process::Command::new("bash")
        .arg(&script)
        .args([
            "--dry-run",
            "--region",
            "eu-west-1",
            "--name-prefix",
            "acme",
        ])
        .args([
            "--alarm-email",
            "ops@acme.example",
            "--limit-mode",
            "strict",
            "--event-format",
            "json",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&dry_run.stdout);
    assert!(
        dry_run.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&dry_run.stderr)
    );
    assert!(
        printed.contains("cargo lambda build --profile lambda --arm64"),
        "{printed}"
    );
    for lambda in [
        "tollgate-proxy-lambda",
        "tollgate-metering-lambda",
        "tollgate-compact-lambda",
    ] {
        assert!(printed.contains(&format!("--bin {lambda}")), "{printed}");
        assert!(
            printed.contains(&format!("target/lambda/{lambda}/")),
            "the template gets {lambda}'s build: {printed}"
        );
    }
    assert!(printed.contains("sam deploy --template-file"), "{printed}");
    for parameter in [
        "NamePrefix=acme",
        "LimitMode=strict",
        "EventFormat=json",
        "AlarmEmail=ops@acme.example",
        "StageName=prod",
    ] {
        assert!(printed.contains(parameter), "{parameter}: {printed}");
    }
    // Every parameter the script sets exists in the template.
    let template = template();
    for word in printed.split_whitespace() {
        if let Some((name, _)) = word.split_once('=')
            && name.chars().next().is_some_and(char::is_uppercase)
        {
            assert!(
                template["Parameters"][name].is_mapping(),
                "{name} is not a template parameter"
            );
        }
    }

    let teardown = std::process::Command::new("bash")
        .arg(&script)
        .args(["teardown", "--dry-run", "--region", "eu-west-1"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&teardown.stdout);
    assert!(teardown.status.success());
    assert!(
        printed.contains("aws cloudformation delete-stack"),
        "{printed}"
    );
    assert!(
        printed.contains("Kept, because they hold billing data"),
        "{printed}"
    );

    for (arguments, expected) in [
        (vec!["--dry-run", "--bogus"], "unknown argument --bogus"),
        (
            vec![
                "--dry-run",
                "--region",
                "eu-west-1",
                "--name-prefix",
                "Bad_Name",
            ],
            "--name-prefix",
        ),
        (
            vec![
                "--dry-run",
                "--region",
                "eu-west-1",
                "--limit-mode",
                "loose",
            ],
            "eventual or strict",
        ),
    ] {
        let refused = std::process::Command::new("bash")
            .arg(&script)
            .args(&arguments)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{arguments:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(expected),
            "{arguments:?}"
        );
    }
}
