-- Admitted calls by the API the customer called, and how many customers used each.
-- Events written before the API was recorded have no api; they count as 'not recorded'.
SELECT COALESCE(api, 'not recorded') AS api,
       SUM(CASE WHEN outcome <> 'rejected_limit' THEN 1 ELSE 0 END) AS requests,
       COUNT(DISTINCT CASE WHEN outcome <> 'rejected_limit' THEN customer_id END) AS customers
FROM usage_events
GROUP BY COALESCE(api, 'not recorded')
ORDER BY api
