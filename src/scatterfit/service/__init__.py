"""The lab's door: `scatterfit serve` (app.py, an HTTP API and a results page), its persistent job queue
(store.py, SQLite) and the workers that run jobs (dispatcher.py), and a Python client (client.py)."""
