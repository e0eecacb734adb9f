"""Gateway adapters: one module per gateway, all on one shared HTTP base."""
