-- BigQuery external table over the records llmpulse writes to GCS: Hive partitions by date,
-- newline-delimited JSON. Replace PROJECT.DATASET and gs://BUCKET/llmpulse with yours.
-- Read a run only once its manifest exists (runs/{run_id}/manifest*.json).

CREATE OR REPLACE EXTERNAL TABLE `PROJECT.DATASET.llmpulse_records`
WITH PARTITION COLUMNS (
  date DATE
)
OPTIONS (
  format = 'NEWLINE_DELIMITED_JSON',
  uris = ['gs://BUCKET/llmpulse/records/*.jsonl'],
  hive_partition_uri_prefix = 'gs://BUCKET/llmpulse/records',
  require_hive_partition_filter = false,
  ignore_unknown_values = true
);

-- The schema is detected from the JSON; pin it by listing the columns as in athena.sql if the
-- first files lack optional fields.
--
-- Per target, last 7 days:
-- SELECT target, COUNT(*) AS n, AVG(CAST(success AS INT64)) AS success_rate,
--        APPROX_QUANTILES(latency_sec, 100)[OFFSET(50)] AS p50_latency
-- FROM `PROJECT.DATASET.llmpulse_records`
-- WHERE date >= DATE_SUB(CURRENT_DATE(), INTERVAL 7 DAY)
-- GROUP BY target ORDER BY p50_latency;
