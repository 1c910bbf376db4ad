"""The official OpenAI Python SDK, unchanged, against Tollgate: its base URL is the proxy's
/v1 and its API key a Tollgate token. Chat, streaming with usage, tools (a call and its
result), the model list, the /prod stage, and errors in OpenAI's shape. Prints what the
SDK saw as JSON.

Environment: TOLLGATE_URL, TOLLGATE_TOKEN, TOLLGATE_RESTRICTED_TOKEN (a customer allowed
only other models).
"""

import json
import os

import openai

BASE = os.environ["TOLLGATE_URL"].rstrip("/")
TOKEN = os.environ["TOLLGATE_TOKEN"]
QUESTION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]
WEATHER = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}]


def client(base=BASE + "/v1", key=TOKEN):
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=30)


def refusal(call):
    try:
        call()
    except openai.APIStatusError as error:
        return {"status": error.status_code, "type": error.body.get("type"), "param": error.body.get("param"),
                "message": error.body.get("message"), "class": type(error).__name__}
    return None


seen = {}
chat = client().chat.completions.create(model="claude-3-sonnet", messages=QUESTION, max_tokens=100, temperature=0.2)
seen["chat"] = {
    "text": chat.choices[0].message.content,
    "finish_reason": chat.choices[0].finish_reason,
    "prompt_tokens": chat.usage.prompt_tokens,
    "completion_tokens": chat.usage.completion_tokens,
    "total_tokens": chat.usage.total_tokens,
    "model": chat.model,
}
pieces, usage, finish = [], None, None
for chunk in client().chat.completions.create(
    model="claude-3-sonnet", messages=QUESTION, max_tokens=100, stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
seen["stream"] = {"text": "".join(pieces), "finish_reason": finish,
                  "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}

ask = [{"role": "user", "content": "What is the weather in Paris?"}]
first = client().chat.completions.create(model="claude-3-sonnet", messages=ask, tools=WEATHER, tool_choice="auto")
call = first.choices[0].message.tool_calls[0]
seen["tool_call"] = {"finish_reason": first.choices[0].finish_reason, "name": call.function.name,
                     "arguments": json.loads(call.function.arguments), "id": call.id}
followup = ask + [
    first.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
]
second = client().chat.completions.create(model="claude-3-sonnet", messages=followup, tools=WEATHER)
seen["tool_answer"] = {"text": second.choices[0].message.content, "finish_reason": second.choices[0].finish_reason}

seen["models"] = sorted(model.id for model in client().models.list())
staged = client(BASE + "/prod/v1").chat.completions.create(model="claude-3-sonnet", messages=QUESTION)
seen["staged"] = staged.choices[0].message.content
seen["bad_key"] = refusal(lambda: client(key="tg_" + "A" * 40).chat.completions.create(
    model="claude-3-sonnet", messages=QUESTION))
seen["not_allowed"] = refusal(lambda: client(key=os.environ["TOLLGATE_RESTRICTED_TOKEN"]).chat.completions.create(
    model="claude-3-sonnet", messages=QUESTION))
restricted = client(key=os.environ["TOLLGATE_RESTRICTED_TOKEN"])
seen["restricted_models"] = sorted(model.id for model in restricted.models.list())
seen["allowed_by_name"] = restricted.chat.completions.create(
    model="claude-3-haiku", messages=QUESTION).choices[0].message.content
seen["unsupported"] = refusal(lambda: client().chat.completions.create(
    model="claude-3-sonnet", messages=QUESTION, frequency_penalty=0.5))
print(json.dumps(seen))
