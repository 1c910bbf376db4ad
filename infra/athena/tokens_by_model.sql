-- Tokens by model.
SELECT model_id,
       SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens
FROM usage_events
GROUP BY model_id
ORDER BY model_id
