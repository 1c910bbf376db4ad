-- Usage trend over time: admitted requests and tokens per day.
SELECT dt AS day,
       SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END) AS requests,
       SUM(input_tokens + output_tokens) AS tokens
FROM usage_events
GROUP BY dt
ORDER BY dt
