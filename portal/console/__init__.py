"""The composition layer: admin screens and demo commands that span several apps.

The top of the dependency rule (docs/architecture.md): it may import every app, and no
app imports it. Screens and commands that need one app only stay in that app.
"""
