-- Error and rejection rates per day, in percent: errors (client and upstream errors) of
-- admitted calls, and limit rejections of all calls.
SELECT dt AS day,
       ROUND(100.0 * SUM(CASE WHEN outcome IN ('client_error', 'upstream_error') THEN 1 ELSE 0 END)
             / GREATEST(SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END), 1), 1) AS error_rate,
       ROUND(100.0 * SUM(CASE WHEN outcome = 'rejected_limit' THEN 1 ELSE 0 END) / COUNT(*), 1) AS rejection_rate
FROM usage_events
GROUP BY dt
ORDER BY dt
