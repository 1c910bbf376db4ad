// The official OpenAI npm package, unchanged, against Tollgate: chat and streaming with
// usage. Prints what the client saw as JSON. Environment: TOLLGATE_URL, TOLLGATE_TOKEN,
// and NODE_PATH pointing at the pinned package (tests/clients/node.sh).
const { OpenAI } = require("openai");

async function main() {
  const client = new OpenAI({
    baseURL: `${process.env.TOLLGATE_URL.replace(/\/$/, "")}/v1`,
    apiKey: process.env.TOLLGATE_TOKEN,
    maxRetries: 0,
  });
  const messages = [{ role: "user", content: "What is the capital of France?" }];
  const chat = await client.chat.completions.create({ model: "claude-3-sonnet", messages, max_tokens: 100 });
  const stream = await client.chat.completions.create({
    model: "claude-3-sonnet", messages, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) text += (choice.delta && choice.delta.content) || "";
  }
  console.log(JSON.stringify({
    chat: { text: chat.choices[0].message.content, usage: chat.usage },
    stream: { text, usage },
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
