-- Most active customers: admitted requests and tokens, the top ten.
SELECT customer_id,
       SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END) AS requests,
       SUM(input_tokens + output_tokens) AS tokens
FROM usage_events
GROUP BY customer_id
ORDER BY requests DESC, customer_id
LIMIT 10
