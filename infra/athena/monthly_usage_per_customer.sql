-- Total usage by customer per month (requests and tokens).
SELECT substr(dt, 1, 7) AS month,
       customer_id,
       SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END) AS requests,
       SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens
FROM usage_events
GROUP BY substr(dt, 1, 7), customer_id
ORDER BY month, customer_id
