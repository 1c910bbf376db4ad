// Calls the four Bedrock runtime operations through Tollgate with the AWS SDK for
// JavaScript v3, configured the way a customer would: a Bedrock API key (the Tollgate
// token) in AWS_BEARER_TOKEN_BEDROCK and `endpoint` set to the proxy. Prints what it saw.
const {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ConverseCommand,
  ConverseStreamCommand,
} = require("@aws-sdk/client-bedrock-runtime");

const profileArn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
const decoder = new TextDecoder();

async function main() {
  const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: process.env.TOLLGATE_ENDPOINT, maxAttempts: 1 });
  const body = JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 100,
    messages: [{ role: "user", content: [{ type: "text", text: "What is the capital of France?" }] }],
  });
  const messages = [{ role: "user", content: [{ text: "What is the capital of France?" }] }];
  const seen = {};

  let answer = await client.send(new InvokeModelCommand({
    modelId: "anthropic.claude-3-sonnet-20240229-v1:0", body, contentType: "application/json", accept: "application/json",
  }));
  seen.invoke = JSON.parse(decoder.decode(answer.body)).usage;

  answer = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: "anthropic.claude-3-sonnet-20240229-v1:0", body }));
  let chunks = 0;
  let metrics = null;
  for await (const event of answer.body) {
    if (event.chunk) {
      chunks += 1;
      const chunk = JSON.parse(decoder.decode(event.chunk.bytes));
      metrics = chunk["amazon-bedrock-invocationMetrics"] || metrics;
    }
  }
  seen.invoke_stream = { chunks, metrics };

  answer = await client.send(new ConverseCommand({ modelId: profileArn, messages }));
  seen.converse = { usage: answer.usage, text: answer.output.message.content[0].text };

  answer = await client.send(new ConverseStreamCommand({ modelId: "amazon.nova-lite-v1:0", messages }));
  let deltas = 0;
  let usage = null;
  for await (const event of answer.stream) {
    if (event.contentBlockDelta) deltas += 1;
    if (event.metadata) usage = event.metadata.usage;
  }
  seen.converse_stream = { deltas, usage };
  console.log(JSON.stringify(seen));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
