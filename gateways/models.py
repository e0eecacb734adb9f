# Gateways keep no state of their own: adapters take a message and return a result.
