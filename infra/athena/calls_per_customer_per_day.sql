-- API calls per customer per day (admitted calls; limit rejections are counted apart).
-- Bound the scan with: WHERE dt BETWEEN 'YYYY-MM-DD' AND 'YYYY-MM-DD'
SELECT dt AS day,
       customer_id,
       SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END) AS requests,
       SUM(CASE WHEN outcome = 'rejected_limit' THEN 1 ELSE 0 END) AS rejected
FROM usage_events
GROUP BY dt, customer_id
ORDER BY dt, customer_id
