"""The store: MLflow runs and what they record, the locks that keep one SQLite store whole, and the UI server."""
