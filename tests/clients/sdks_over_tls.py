"""The official Anthropic and OpenAI Python SDKs over HTTPS, as they default to it: the
proxy's certificate is trusted the way any operator's private CA would be, through
SSL_CERT_FILE; nothing in the clients changes. Prints what they saw as JSON.

Environment: TOLLGATE_URL (https://…), TOLLGATE_TOKEN, SSL_CERT_FILE.
"""

import json
import os

import anthropic
import openai

BASE = os.environ["TOLLGATE_URL"].rstrip("/")
TOKEN = os.environ["TOLLGATE_TOKEN"]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]

claude = anthropic.Anthropic(base_url=BASE, api_key=TOKEN, max_retries=0, timeout=30)
message = claude.messages.create(model="claude-3-sonnet", max_tokens=50, messages=QUESTION)
with claude.messages.stream(model="claude-3-sonnet", max_tokens=50, messages=QUESTION) as stream:
    anthropic_streamed = "".join(stream.text_stream)
gpt = openai.OpenAI(base_url=BASE + "/v1", api_key=TOKEN, max_retries=0, timeout=30)
chat = gpt.chat.completions.create(model="claude-3-sonnet", messages=QUESTION)
openai_streamed = "".join(
    chunk.choices[0].delta.content or ""
    for chunk in gpt.chat.completions.create(model="claude-3-sonnet", messages=QUESTION, stream=True)
    if chunk.choices
)
print(json.dumps({
    "anthropic": message.content[0].text,
    "anthropic_stream": anthropic_streamed,
    "openai": chat.choices[0].message.content,
    "openai_stream": openai_streamed,
}))
