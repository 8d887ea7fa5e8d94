"""The township server: entries up from the gates, policy and lists down, reports."""
from sync.server.app import Settings, create_app
from sync.server.db import Database

__all__ = ["Settings", "create_app", "Database"]
