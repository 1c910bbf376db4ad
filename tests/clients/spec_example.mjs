// The spec's JavaScript client example, unchanged but for the two values the spec says to
// fill in (the API URL and the customer's token), which come from the environment here.
const API_ENDPOINT = process.env.TOLLGATE_ENDPOINT + '/prod/bedrock';
const AUTH_TOKEN = process.env.TOLLGATE_TOKEN;

async function callBedrockAPI(prompt) {
  const apiEndpoint = API_ENDPOINT;
  const authToken = AUTH_TOKEN;

  const response = await fetch(apiEndpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Authorization': `Bearer ${authToken}`
    },
    body: JSON.stringify({
      // Required: specify which model to use
      modelId: 'anthropic.claude-3-sonnet-20240229-v1:0',

      // Claude-specific parameters
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 1000,
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'text',
              text: prompt
            }
          ]
        }
      ]
    })
  });

  if (!response.ok) {
    throw new Error(`API request failed: ${response.status}`);
  }

  return await response.json();
}

callBedrockAPI("What is the capital of France?")
  .then(result => console.log(result.content[0].text))
  .catch(error => { console.error(error); process.exit(1); });
