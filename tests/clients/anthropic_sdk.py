"""The official Anthropic Python SDK, unchanged, against Tollgate: its base URL is the
proxy and its API key a Tollgate token. Messages, streaming, count_tokens, the /prod stage, and errors
in Anthropic's shape. Prints what the SDK saw as JSON.

Environment: TOLLGATE_URL, TOLLGATE_TOKEN, TOLLGATE_RESTRICTED_TOKEN (a customer allowed
only other models).
"""

import json
import os

import anthropic

BASE = os.environ["TOLLGATE_URL"].rstrip("/")
TOKEN = os.environ["TOLLGATE_TOKEN"]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def client(base=BASE, key=TOKEN):
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)


def refusal(call):
    try:
        call()
    except anthropic.APIStatusError as error:
        return {"status": error.status_code, "type": error.body["error"]["type"],
                "message": error.body["error"]["message"], "class": type(error).__name__}
    return None


seen = {}
message = client().messages.create(model="claude-3-sonnet", max_tokens=100, messages=QUESTION)
seen["create"] = {
    "text": message.content[0].text,
    "input_tokens": message.usage.input_tokens,
    "output_tokens": message.usage.output_tokens,
    "stop_reason": message.stop_reason,
}
with client().messages.stream(
    model="anthropic.claude-3-sonnet-20240229-v1:0", max_tokens=100, messages=QUESTION
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
seen["stream"] = {
    "text": text,
    "input_tokens": final.usage.input_tokens,
    "output_tokens": final.usage.output_tokens,
    "stop_reason": final.stop_reason,
}
staged = client(BASE + "/prod").messages.create(
    model="claude-3-sonnet", max_tokens=100, messages=QUESTION, system="Answer briefly."
)
seen["staged"] = {"output_tokens": staged.usage.output_tokens}
counted = client().messages.count_tokens(
    model="claude-3-sonnet", messages=QUESTION, system="Answer briefly."
)
seen["count_tokens"] = counted.input_tokens
seen["count_not_allowed"] = refusal(
    lambda: client(key=os.environ["TOLLGATE_RESTRICTED_TOKEN"]).messages.count_tokens(
        model="claude-3-sonnet", messages=QUESTION
    )
)
seen["bad_key"] = refusal(
    lambda: client(key="tg_" + "A" * 40).messages.create(
        model="claude-3-sonnet", max_tokens=10, messages=QUESTION
    )
)
seen["not_allowed"] = refusal(
    lambda: client(key=os.environ["TOLLGATE_RESTRICTED_TOKEN"]).messages.create(
        model="claude-3-sonnet", max_tokens=10, messages=QUESTION
    )
)
seen["bad_model"] = refusal(
    lambda: client().messages.create(model="../../admin", max_tokens=10, messages=QUESTION)
)
print(json.dumps(seen))
