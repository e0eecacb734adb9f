"""Backup and restore of the whole database, with a manifest checked on restore (CONTRACT.md v1.1)."""
