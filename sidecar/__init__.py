"""sidecar: run an ordered migration plan across PostgreSQL databases, then report healthy.

Kept empty on purpose: `sidecar probe` runs as a Compose healthcheck every few
seconds and must not pay for importing psycopg2 or structlog.
"""

__version__ = "0.1.0"
