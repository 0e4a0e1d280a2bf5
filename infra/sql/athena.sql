-- Athena over the records llmpulse writes to S3: Hive partitions by date, JSON lines.
-- Replace s3://BUCKET/llmpulse with your output. New days appear through partition projection,
-- with no MSCK REPAIR. Read a run only once its manifest exists (runs/{run_id}/manifest*.json).

CREATE EXTERNAL TABLE IF NOT EXISTS llmpulse_records (
  `timestamp` string,
  industry string,
  question string,
  llm_provider string,
  llm_model string,
  latency_sec double,
  throughput_tps double,
  success boolean,
  coverage_score double,
  prompt_tokens int,
  response_tokens int,
  run_id string,
  campaign string,
  slot bigint,
  question_id string,
  target string,
  repetition int,
  task string,
  streamed boolean,
  ttfb_sec double,
  ttft_sec double,
  ttfat_sec double,
  output_speed_tps double,
  tpot_sec double,
  chunk_count int,
  chunk_gap_p50_sec double,
  chunk_gap_p99_sec double,
  chunk_gap_max_sec double,
  token_source string,
  reasoning_tokens int,
  attempts int,
  rate_limited_count int,
  queue_wait_sec double,
  retry_wait_sec double,
  ratelimit_remaining_requests bigint,
  ratelimit_remaining_tokens bigint,
  failover_from string,
  failover_to string,
  cost_usd double,
  server_load_sec double,
  server_prefill_sec double,
  server_decode_tps double,
  error_kind string,
  error_message string,
  http_status int,
  finish_reason string,
  grounding_score double,
  json_valid boolean,
  tool_calls string,
  tool_call_valid boolean,
  answer_chars int,
  answer string,
  answer_sha256 string,
  provider_request_id string,
  temperature double,
  max_tokens int,
  origin string,
  llmpulse_version string,
  config_hash string
)
PARTITIONED BY (`date` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://BUCKET/llmpulse/records/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '2025-01-01,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://BUCKET/llmpulse/records/date=${date}/'
);

-- Per target, last 7 days: the seed's comparison.
-- SELECT target, count(*) AS n, avg(CAST(success AS int)) AS success_rate,
--        approx_percentile(latency_sec, 0.5) AS p50_latency, approx_percentile(ttft_sec, 0.5) AS p50_ttft
-- FROM llmpulse_records WHERE "date" >= date_format(current_date - interval '7' day, '%Y-%m-%d')
-- GROUP BY target ORDER BY p50_latency;
