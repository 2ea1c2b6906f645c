"""The load test: locust, headless, against `make serve` on PostgreSQL (`make loadtest`)."""
