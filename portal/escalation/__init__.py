"""Escalation: rules over counters the product already keeps, sent through ops connections.

``conf/escalations.toml`` (``ESCALATIONS_FILE``) is registry data like targets and
connections: ``sync_targets`` loads it with audited revisions. A django-q2 schedule
evaluates every rule against the database and keeps one episode per breached subject;
each episode notifies its destinations once when it opens and once when it resolves.
"""
