"""Calls the four Bedrock runtime operations through Tollgate with the official AWS SDK for
Python, configured the way a customer would: a Bedrock API key (the Tollgate token) in
AWS_BEARER_TOKEN_BEDROCK and endpoint_url set to the proxy. Prints what it saw as JSON."""
import json
import os

import boto3
import botocore.exceptions
from botocore.config import Config

endpoint = os.environ["TOLLGATE_ENDPOINT"]
ca_bundle = os.environ["TOLLGATE_CA_BUNDLE"]
profile_arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
config = Config(retries={"max_attempts": 1, "mode": "standard"})


def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=endpoint, verify=ca_bundle, config=config)


runtime = client()
body = json.dumps({
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}],
})
seen = {}

answer = runtime.invoke_model(modelId="anthropic.claude-3-sonnet-20240229-v1:0", body=body, contentType="application/json", accept="application/json")
seen["invoke"] = json.loads(answer["body"].read())["usage"]

answer = runtime.invoke_model_with_response_stream(modelId="anthropic.claude-3-sonnet-20240229-v1:0", body=body)
chunks, metrics = 0, None
for event in answer["body"]:
    chunk = json.loads(event["chunk"]["bytes"])
    chunks += 1
    metrics = chunk.get("amazon-bedrock-invocationMetrics", metrics)
seen["invoke_stream"] = {"chunks": chunks, "metrics": metrics}

messages = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
answer = runtime.converse(modelId=profile_arn, messages=messages, inferenceConfig={"maxTokens": 100})
seen["converse"] = {"usage": answer["usage"], "text": answer["output"]["message"]["content"][0]["text"]}

answer = runtime.converse_stream(modelId="amazon.nova-lite-v1:0", messages=messages)
deltas, usage = 0, None
for event in answer["stream"]:
    if "contentBlockDelta" in event:
        deltas += 1
    if "metadata" in event:
        usage = event["metadata"]["usage"]
seen["converse_stream"] = {"deltas": deltas, "usage": usage}

os.environ["AWS_BEARER_TOKEN_BEDROCK"] = "tg_not-a-valid-token-at-all-not-a-valid-token-at-all"
try:
    client().converse(modelId="amazon.nova-lite-v1:0", messages=messages)
    seen["bad_token"] = None
except botocore.exceptions.ClientError as error:
    seen["bad_token"] = {"status": error.response["ResponseMetadata"]["HTTPStatusCode"], "code": error.response["Error"]["Code"]}

print(json.dumps(seen))
