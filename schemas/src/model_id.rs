//! The shape of a Bedrock model identifier, checked before a call costs an upstream request.
//!
//! Bedrock's runtime (`InvokeModelIdentifier` in its service model) takes either a plain id
//! (`anthropic.claude-3-haiku-20240307-v1:0`, an inference profile such as
//! `us.anthropic.claude-3-5-haiku-20241022-v1:0`, a provisioned model's id) or an ARN of a
//! foundation model, custom model, imported model, provisioned model, custom model
//! deployment, inference profile, prompt or prompt router, or a SageMaker endpoint; at most
//! 2048 characters. This check accepts exactly those shapes; whether the model exists is
//! Bedrock's answer. Anything else (a path such as `../../admin`, spaces, `?` or `#`) would
//! only cost an upstream call that Bedrock refuses, or worse be read as another path.

use std::fmt;

/// Longest model id Bedrock accepts.
pub const MAX_MODEL_ID_CHARS: usize = 2048;

/// ARN resource types that name something a Bedrock runtime call can run, and whether the
/// ARN carries an account (a foundation model's does not).
const BEDROCK_RESOURCES: [(&str, Account); 10] = [
    ("foundation-model", Account::Empty),
    ("custom-model", Account::Required),
    ("imported-model", Account::Required),
    ("provisioned-model", Account::Required),
    ("custom-model-deployment", Account::Required),
    ("inference-profile", Account::Required),
    ("application-inference-profile", Account::Required),
    ("prompt", Account::Required),
    ("prompt-router", Account::Required),
    ("default-prompt-router", Account::Required),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Account {
    Empty,
    Required,
}

/// Why a string is not a Bedrock model id; its `Display` names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIdError {
    model_id: String,
    reason: String,
}

impl ModelIdError {
    fn new(model_id: &str, reason: impl Into<String>) -> Self {
        // A rejected id is echoed back (escaped, and cut short if it is very long).
        let shown: String = model_id.chars().take(200).collect();
        Self {
            model_id: shown,
            reason: reason.into(),
        }
    }

    /// What is wrong, without the id.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ModelIdError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "modelId {:?} is not a Bedrock model id: {}; send a model id such as \
             \"anthropic.claude-3-haiku-20240307-v1:0\", an inference profile id such as \
             \"us.anthropic.claude-3-5-haiku-20241022-v1:0\", or a model ARN",
            self.model_id, self.reason
        )
    }
}

impl std::error::Error for ModelIdError {}

/// Checks that `model_id` has the shape of a Bedrock model id or model ARN.
pub fn check_model_id(model_id: &str) -> Result<(), ModelIdError> {
    if model_id.is_empty() {
        return Err(ModelIdError::new(model_id, "it is empty"));
    }
    if model_id.len() > MAX_MODEL_ID_CHARS {
        return Err(ModelIdError::new(
            model_id,
            format!(
                "it is {} characters long, more than the {MAX_MODEL_ID_CHARS} Bedrock accepts",
                model_id.len()
            ),
        ));
    }
    if let Some(bad) = model_id
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ModelIdError::new(
            model_id,
            format!("it contains whitespace or control characters ({bad:?})"),
        ));
    }
    match model_id.strip_prefix("arn:") {
        Some(rest) => check_arn(model_id, rest),
        None => check_name(model_id, model_id, "a model id"),
    }
}

/// A name part: starts with a letter or digit; letters, digits, `.`, `_`, `:` and `-`.
fn check_name(model_id: &str, name: &str, what: &str) -> Result<(), ModelIdError> {
    let Some(first) = name.chars().next() else {
        return Err(ModelIdError::new(model_id, format!("{what} is empty")));
    };
    if !first.is_ascii_alphanumeric() {
        return Err(ModelIdError::new(
            model_id,
            format!("{what} must start with a letter or a digit, not {first:?}"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        let hint = if bad == '/' {
            " ('/' appears only in an ARN's resource)"
        } else {
            ""
        };
        return Err(ModelIdError::new(
            model_id,
            format!(
                "{what} may hold only letters, digits, '.', '_', ':' and '-', not {bad:?}{hint}"
            ),
        ));
    }
    Ok(())
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:TYPE/NAME`, `rest` after `arn:`.
fn check_arn(model_id: &str, rest: &str) -> Result<(), ModelIdError> {
    let mut parts = rest.splitn(5, ':');
    let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ModelIdError::new(
            model_id,
            "an ARN has the form arn:aws:bedrock:REGION:ACCOUNT:TYPE/NAME",
        ));
    };
    check_partition_region(model_id, partition, region)?;
    let account_is_id = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    if !(account.is_empty() || account_is_id) {
        return Err(ModelIdError::new(
            model_id,
            format!("the ARN's account {account:?} is not a 12-digit account id"),
        ));
    }
    let Some((kind, name)) = resource.split_once('/') else {
        return Err(ModelIdError::new(
            model_id,
            format!("the ARN's resource {resource:?} has no TYPE/NAME"),
        ));
    };
    check_resource_type(model_id, service, kind, account_is_id)?;
    // A custom model's name holds one '/' (the model, then its id); no other has one.
    let segments = if kind == "custom-model" { 2 } else { 1 };
    let mut count = 0;
    for segment in name.split('/') {
        count += 1;
        check_name(model_id, segment, "the ARN's resource name")?;
    }
    if count > segments {
        return Err(ModelIdError::new(
            model_id,
            format!("a {kind} ARN's name holds no '/'"),
        ));
    }
    Ok(())
}

/// `aws` or `aws-…` (aws-cn, aws-us-gov, …), and a region such as `us-east-1`.
fn check_partition_region(
    model_id: &str,
    partition: &str,
    region: &str,
) -> Result<(), ModelIdError> {
    let lower_digit_dash = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let partition_ok = partition == "aws"
        || partition
            .strip_prefix("aws-")
            .is_some_and(|suffix| !suffix.is_empty() && suffix.chars().all(lower_digit_dash));
    if !partition_ok {
        return Err(ModelIdError::new(
            model_id,
            format!("the ARN's partition is {partition:?}, not aws or aws-…"),
        ));
    }
    if !((1..=20).contains(&region.len()) && region.chars().all(lower_digit_dash)) {
        return Err(ModelIdError::new(
            model_id,
            format!("the ARN's region {region:?} is not a region such as us-east-1"),
        ));
    }
    Ok(())
}

/// A resource type a model call can use, with an account where it needs one.
fn check_resource_type(
    model_id: &str,
    service: &str,
    kind: &str,
    account_is_id: bool,
) -> Result<(), ModelIdError> {
    match service {
        "bedrock" => {
            let Some((_, needs)) = BEDROCK_RESOURCES.iter().find(|(known, _)| *known == kind)
            else {
                return Err(ModelIdError::new(
                    model_id,
                    format!("{kind:?} is not a Bedrock resource a model call can use"),
                ));
            };
            match (needs, account_is_id) {
                (Account::Empty, true) => Err(ModelIdError::new(
                    model_id,
                    "a foundation model's ARN has no account (arn:aws:bedrock:REGION::foundation-model/NAME)",
                )),
                (Account::Required, false) => Err(ModelIdError::new(
                    model_id,
                    format!("a {kind} ARN needs the 12-digit account id"),
                )),
                _ => Ok(()),
            }
        }
        "sagemaker" if kind == "endpoint" && account_is_id => Ok(()),
        "sagemaker" => Err(ModelIdError::new(
            model_id,
            "a SageMaker ARN must name an endpoint with its account: arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME",
        )),
        other => Err(ModelIdError::new(
            model_id,
            format!("the ARN's service is {other:?}, not bedrock or sagemaker"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_ids_and_arns_bedrock_documents_are_accepted() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-sonnet-20240229-v1:0",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "global.anthropic.claude-sonnet-4-20250514-v1:0",
            "amazon.titan-embed-text-v2:0",
            "meta.llama3-70b-instruct-v1:0",
            "cohere.command-r-plus-v1:0",
            "fake-model",
            "abc123def456",
            "my_model-1",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/a1b2c3d4e5f6",
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456",
            "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdef123456",
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abcdef123456",
            "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456",
            "arn:aws:bedrock:us-east-1:123456789012:prompt/ABCDEFGHIJ:1",
            "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
            "arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws-cn:bedrock:cn-north-1:123456789012:inference-profile/apac.amazon.nova-lite-v1:0",
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
        ] {
            assert_eq!(check_model_id(id), Ok(()), "{id}");
        }
        assert_eq!(check_model_id(&"a".repeat(MAX_MODEL_ID_CHARS)), Ok(()));
    }

    /// Strings that are not model ids, and a part of the reason each is refused for.
    const REFUSED: &[(&str, &str)] = &[
        ("", "it is empty"),
        ("../../admin", "must start with a letter or a digit"),
        ("..", "must start with a letter or a digit"),
        (
            "anthropic/../../admin",
            "not '/' ('/' appears only in an ARN",
        ),
        ("model?x=1", "not '?'"),
        ("model#frag", "not '#'"),
        ("model%2Fx", "not '%'"),
        ("a b", "whitespace"),
        ("a\nb", "whitespace"),
        ("a\u{0}b", "control"),
        ("modèle", "not 'è'"),
        ("arn:aws:bedrock", "has the form"),
        (
            "arn:azure:bedrock:us-east-1::foundation-model/x.y",
            "partition",
        ),
        (
            "arn:aws:s3:us-east-1:123456789012:bucket/x",
            "service is \"s3\"",
        ),
        (
            "arn:aws:bedrock:US_EAST:123456789012:inference-profile/x",
            "region",
        ),
        (
            "arn:aws:bedrock:us-east-1:12345:inference-profile/x",
            "account",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:agent/x",
            "\"agent\" is not",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:foundation-model/x.y",
            "has no account",
        ),
        (
            "arn:aws:bedrock:us-east-1::inference-profile/x",
            "needs the 12-digit",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile",
            "no TYPE/NAME",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/",
            "name is empty",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/a/b",
            "holds no '/'",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/a/../b",
            "must start with a letter",
        ),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:model/x",
            "SageMaker",
        ),
    ];

    #[test]
    fn other_strings_are_refused_with_the_reason_and_the_fix() {
        for &(id, reason) in REFUSED {
            let error = check_model_id(id).expect_err(id);
            assert!(
                error.reason().contains(reason),
                "{id:?}: {}",
                error.reason()
            );
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("modelId {id:?} is not a Bedrock model id: ")),
                "{message}"
            );
            assert!(message.ends_with("or a model ARN"), "{message}");
        }
        let long = "a".repeat(MAX_MODEL_ID_CHARS + 1);
        let error = check_model_id(&long).unwrap_err();
        assert!(error.reason().contains("2049 characters"));
        assert!(
            error.to_string().len() < 600,
            "a long id is not echoed whole"
        );
    }
}
