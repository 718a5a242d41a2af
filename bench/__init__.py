"""The benchmark of the API against a bare Flask baseline (`python -m bench`, see README.md)."""
