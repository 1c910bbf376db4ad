use super::*;
use schemas::bedrock_stream::{encode_event, encode_exception};

fn names() -> ModelNames {
    ModelNames::from_toml(
        "schema_version = 1\n[[models]]\nname = \"claude-3-haiku\"\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n",
    )
    .unwrap()
}

fn converse(body: Value) -> (ChatRequest, Value) {
    let request = chat_request(body.to_string().as_bytes(), &names()).unwrap();
    let sent = serde_json::from_slice(&request.body).unwrap();
    (request, sent)
}

#[test]
fn messages_map_to_system_blocks_and_alternating_turns() {
    let (request, sent) = converse(json!({
        "model": "claude-3-haiku",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "And this:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Merci"},
        ],
    }));
    assert_eq!(
        request.model.model_id,
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert!(!request.stream && !request.include_usage);
    assert_eq!(
        sent["system"],
        json!([{"text": "Be brief."}, {"text": "Use French."}])
    );
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"text": "Hello"}, {"text": "And this:"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]},
            {"role": "assistant", "content": [{"text": "Bonjour"}]},
            {"role": "user", "content": [{"text": "Merci"}]},
        ])
    );
    assert!(sent.get("inferenceConfig").is_none());
}

#[test]
fn parameters_map_to_inference_config() {
    let (request, sent) = converse(json!({
        "model": "anthropic.claude-3-haiku-20240307-v1:0", "messages": [{"role": "user", "content": "x"}],
        "max_completion_tokens": 50, "max_tokens": 10, "temperature": 0.5, "top_p": 0.9,
        "stop": "END", "stream": true, "stream_options": {"include_usage": true},
        "user": "end-user-7", "n": 1,
    }));
    assert!(request.stream && request.include_usage);
    assert_eq!(
        sent["inferenceConfig"],
        json!({"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
    );
    let (_, sent) =
        converse(json!({"model": "m.x-v1:0", "messages": [], "max_tokens": 7, "stop": ["a", "b"]}));
    assert_eq!(
        sent["inferenceConfig"],
        json!({"maxTokens": 7, "stopSequences": ["a", "b"]})
    );
}

#[test]
fn tools_tool_choice_tool_calls_and_tool_results_map_to_converse() {
    let (_, sent) = converse(json!({
        "model": "claude-3-haiku",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    }));
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": [{"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}}]})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "18 C, sunny"}]}}]})
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "weather", "description": "Current weather",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
            "toolChoice": {"tool": {"name": "weather"}}})
    );
    for (choice, expected) in [
        (json!("auto"), json!({"auto": {}})),
        (json!("required"), json!({"any": {}})),
    ] {
        let (_, sent) = converse(json!({"model": "m.x-v1:0", "messages": [],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}));
        assert_eq!(sent["toolConfig"]["toolChoice"], expected);
    }
    let (_, none) = converse(json!({"model": "m.x-v1:0", "messages": [],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}));
    assert!(none.get("toolConfig").is_none(), "none: no tools offered");
}

#[test]
fn what_bedrock_cannot_honour_is_refused_by_name() {
    for (extra, param) in [
        (json!({"frequency_penalty": 0.5}), "frequency_penalty"),
        (json!({"presence_penalty": 0.5}), "presence_penalty"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"seed": 7}), "seed"),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
        (json!({"n": 2}), "n"),
        (json!({"store": true}), "store"),
        (json!({"wibble": 1}), "wibble"),
        (json!({"stream": "yes"}), "stream"),
        (json!({"max_tokens": -1}), "max_tokens"),
        (json!({"stop": 5}), "stop"),
        (json!({"tool_choice": "auto"}), "tool_choice"),
        (json!({"model": "../../admin"}), "model"),
        (
            json!({"messages": [{"role": "critic", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "messages[0]",
        ),
        (json!({"tools": [{"type": "retrieval"}]}), "tools[0]"),
    ] {
        let mut body =
            json!({"model": "claude-3-haiku", "messages": [{"role": "user", "content": "x"}]});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let error = chat_request(body.to_string().as_bytes(), &names()).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST, "{param}");
        assert_eq!(
            error.details.as_ref().unwrap()["param"],
            param,
            "{}",
            error.message
        );
        assert!(
            error.message.contains(param.split('[').next().unwrap()),
            "{}",
            error.message
        );
    }
    for (body, param) in [
        (&b"nope"[..], "body"),
        (b"{}", "model"),
        (br#"{"model":"m.x-v1:0"}"#, "messages"),
    ] {
        let error = chat_request(body, &names()).unwrap_err();
        assert_eq!(error.details.unwrap()["param"], param);
    }
}

#[test]
fn answers_and_finish_reasons_map_to_a_chat_completion() {
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15, "cacheReadInputTokens": 4},
    });
    let completion = completion(
        answer.to_string().as_bytes(),
        "chatcmpl-1",
        "claude-3-haiku",
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(
        completion,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "claude-3-haiku",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4}}})
    );
    let tools = json!({"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1}});
    let completion = super::completion(tools.to_string().as_bytes(), "c", "m", 0).unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
    ] {
        assert_eq!(finish_reason(stop), finish);
    }
    assert_eq!(super::completion(b"{}", "c", "m", 0), None);
}

#[test]
fn errors_take_openais_shape() {
    assert_eq!(
        error_from(
            400,
            br#"{"message":"parameter \"seed\" is not supported","param":"seed"}"#
        ),
        json!({"error": {"message": "parameter \"seed\" is not supported", "type": "invalid_request_error", "param": "seed", "code": null}})
    );
    assert_eq!(
        error_from(401, b"")["error"]["type"],
        "authentication_error"
    );
    assert_eq!(
        error_from(429, br#"{"message":"x","limit":"daily_requests"}"#)["error"]["code"],
        "daily_requests"
    );
    assert_eq!(error_from(503, b"")["error"]["type"], "api_error");
}

fn converse_stream() -> Vec<u8> {
    let mut bytes = Vec::new();
    for (kind, payload) in [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "weather"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}, "metrics": {"latencyMs": 5}}),
        ),
    ] {
        bytes.extend(encode_event(kind, payload.to_string().as_bytes()));
    }
    bytes
}

fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn streams_become_chunks_ending_with_done_and_usage_when_asked() {
    let bytes = converse_stream();
    let mut translator = ChunkTranslator::new("chatcmpl-9", "claude-3-haiku", 5, true);
    let mut text = String::new();
    for piece in bytes.chunks(5) {
        text.push_str(&translator.push(piece));
    }
    let lines = data_lines(&text);
    assert_eq!(lines.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk" && chunk["id"] == "chatcmpl-9")
    );
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello");
    assert_eq!(
        chunks[3]["choices"][0]["delta"]["tool_calls"][0]["id"],
        "t1"
    );
    assert_eq!(
        chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "weather"
    );
    let arguments: String = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 13);

    let mut quiet = ChunkTranslator::new("c", "m", 0, false);
    let text = quiet.push(&bytes);
    assert!(!text.contains("\"usage\""), "no usage chunk unless asked");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_exceptions_end_with_an_error_in_openais_shape() {
    let mut bytes = encode_event("messageStart", br#"{"role":"assistant"}"#);
    bytes.extend(encode_exception("throttlingException", "Too many requests"));
    let text = ChunkTranslator::new("c", "m", 0, true).push(&bytes);
    let lines = data_lines(&text);
    let error: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["message"], "Too many requests");
    assert!(!text.contains("[DONE]"));
}
