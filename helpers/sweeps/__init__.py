"""The sweep engine: configurations, their tables, training, the results store and backends."""
