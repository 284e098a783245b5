"""Django's PostgreSQL backend (psycopg2) with a connection pool per process: ``ENGINE = "portal.db"``."""
