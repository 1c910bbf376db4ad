"""The spec's Python client example, unchanged but for the two values the spec says to fill
in (the API URL and the customer's token), which come from the environment here."""
import os
import sys

import requests

API_ENDPOINT = os.environ["TOLLGATE_ENDPOINT"] + "/prod/bedrock"
AUTH_TOKEN = os.environ["TOLLGATE_TOKEN"]


def call_bedrock_api(prompt):
    api_endpoint = API_ENDPOINT
    auth_token = AUTH_TOKEN

    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {auth_token}"
    }

    payload = {
        "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1000,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": prompt
                    }
                ]
            }
        ]
    }

    response = requests.post(api_endpoint, headers=headers, json=payload)
    response.raise_for_status()  # Raise exception for 4XX/5XX responses

    return response.json()


result = call_bedrock_api("What is the capital of France?")
print(result["content"][0]["text"])
sys.exit(0)
