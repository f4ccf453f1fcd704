"""Object-store adapters for remote state, one module per store, each importing its own SDK.

Loaded by name from ``mlstack.engine.objectstore.open_store`` only when a `state:` block asks
for that store; the core packages never import these modules (an import-linter contract).
"""
