"""The REST API's cross-cutting layer: problem+json errors, auth scopes, limits, schema."""
