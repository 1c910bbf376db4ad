//! Token counts from Bedrock's answers: response headers first, then `usage` in the body.
//!
//! Bedrock's InvokeModel returns `x-amzn-bedrock-input-token-count` and
//! `x-amzn-bedrock-output-token-count`. Model bodies carry their own usage object, in
//! one of a few spellings (Anthropic `input_tokens`, Converse `inputTokens`, others).

use serde_json::Value;

/// Header Bedrock sets with the input token count.
pub const INPUT_TOKEN_HEADER: &str = "x-amzn-bedrock-input-token-count";
/// Header Bedrock sets with the output token count.
pub const OUTPUT_TOKEN_HEADER: &str = "x-amzn-bedrock-output-token-count";

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// Parses the two token-count headers; `None` unless both are present and numeric.
pub fn usage_from_headers(
    input_header: Option<&str>,
    output_header: Option<&str>,
) -> Option<TokenUsage> {
    let input_tokens = input_header?.trim().parse().ok()?;
    let output_tokens = output_header?.trim().parse().ok()?;
    Some(TokenUsage {
        input_tokens,
        output_tokens,
        ..TokenUsage::default()
    })
}

fn first_count(object: &Value, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|name| object.get(*name)?.as_u64())
}

fn usage_object(usage: &Value) -> Option<TokenUsage> {
    let input_tokens = first_count(
        usage,
        &[
            "input_tokens",
            "inputTokens",
            "inputTokenCount",
            "prompt_tokens",
        ],
    )?;
    let output_tokens = first_count(
        usage,
        &[
            "output_tokens",
            "outputTokens",
            "outputTokenCount",
            "completion_tokens",
        ],
    )?;
    Some(TokenUsage {
        input_tokens,
        output_tokens,
        cache_read_tokens: first_count(
            usage,
            &[
                "cache_read_input_tokens",
                "cacheReadInputTokens",
                "cacheReadInputTokenCount",
            ],
        )
        .unwrap_or(0),
        cache_write_tokens: first_count(
            usage,
            &[
                "cache_creation_input_tokens",
                "cacheWriteInputTokens",
                "cacheWriteInputTokenCount",
            ],
        )
        .unwrap_or(0),
    })
}

/// Finds usage in a model's JSON body; `None` when the body has none. Covers Anthropic
/// Messages and Converse (`usage`), Amazon Nova (`usage` in camelCase), Meta Llama
/// (`prompt_token_count`, `generation_token_count`), Amazon Titan (`inputTextTokenCount`,
/// `results[].tokenCount`) and Cohere Command R (`meta.billed_units`). Mistral bodies carry
/// no counts; Bedrock's token-count headers cover them.
pub fn usage_from_body(body: &[u8]) -> Option<TokenUsage> {
    let document: Value = serde_json::from_slice(body).ok()?;
    if let Some(usage) = document
        .get("usage")
        .or_else(|| document.get("amazon-bedrock-invocationMetrics"))
    {
        return usage_object(usage);
    }
    if let (Some(input_tokens), Some(output_tokens)) = (
        first_count(&document, &["prompt_token_count"]),
        first_count(&document, &["generation_token_count"]),
    ) {
        return Some(TokenUsage {
            input_tokens,
            output_tokens,
            ..TokenUsage::default()
        });
    }
    if let Some(input_tokens) = first_count(&document, &["inputTextTokenCount"]) {
        let output_tokens = document
            .get("results")?
            .as_array()?
            .iter()
            .filter_map(|result| first_count(result, &["tokenCount"]))
            .sum();
        return Some(TokenUsage {
            input_tokens,
            output_tokens,
            ..TokenUsage::default()
        });
    }
    let billed = document.get("meta")?.get("billed_units")?;
    Some(TokenUsage {
        input_tokens: first_count(billed, &["input_tokens"])?,
        output_tokens: first_count(billed, &["output_tokens"])?,
        ..TokenUsage::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_need_both_counts() {
        assert_eq!(
            usage_from_headers(Some("12"), Some("34")),
            Some(TokenUsage {
                input_tokens: 12,
                output_tokens: 34,
                ..Default::default()
            })
        );
        assert_eq!(usage_from_headers(Some("12"), None), None);
        assert_eq!(usage_from_headers(Some("x"), Some("1")), None);
    }

    #[test]
    fn anthropic_body_usage_with_cache() {
        let body = br#"{"content":[],"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3,"cache_creation_input_tokens":2}}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 10,
                output_tokens: 5,
                cache_read_tokens: 3,
                cache_write_tokens: 2
            })
        );
    }

    #[test]
    fn converse_body_usage() {
        let body = br#"{"usage":{"inputTokens":7,"outputTokens":8,"totalTokens":15}}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 7,
                output_tokens: 8,
                ..Default::default()
            })
        );
    }

    #[test]
    fn nova_invoke_body_usage_with_cache() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Paris."}]}},"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15,"cacheReadInputTokenCount":4,"cacheWriteInputTokenCount":1}}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 12,
                output_tokens: 3,
                cache_read_tokens: 4,
                cache_write_tokens: 1
            })
        );
    }

    #[test]
    fn llama_body_usage() {
        let body = br#"{"generation":" Paris is the capital of France.","prompt_token_count":18,"generation_token_count":9,"stop_reason":"stop"}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 18,
                output_tokens: 9,
                ..Default::default()
            })
        );
    }

    #[test]
    fn titan_body_usage() {
        let body = br#"{"inputTextTokenCount":6,"results":[{"tokenCount":8,"outputText":"Paris.","completionReason":"FINISH"}]}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 6,
                output_tokens: 8,
                ..Default::default()
            })
        );
    }

    #[test]
    fn cohere_command_r_body_usage() {
        let body = br#"{"response_id":"r1","text":"Paris.","generation_id":"g1","finish_reason":"COMPLETE","meta":{"api_version":{"version":"1"},"billed_units":{"input_tokens":14,"output_tokens":2}}}"#;
        assert_eq!(
            usage_from_body(body),
            Some(TokenUsage {
                input_tokens: 14,
                output_tokens: 2,
                ..Default::default()
            })
        );
    }

    #[test]
    fn mistral_bodies_have_no_counts_and_rely_on_headers() {
        let body = br#"{"outputs":[{"text":" Paris.","stop_reason":"stop"}]}"#;
        assert_eq!(usage_from_body(body), None);
    }

    #[test]
    fn bodies_without_usage_or_not_json() {
        assert_eq!(usage_from_body(b"{}"), None);
        assert_eq!(usage_from_body(b"not json"), None);
        assert_eq!(
            usage_from_body(br#"{"usage":{"input_tokens":-1,"output_tokens":2}}"#),
            None
        );
    }
}
