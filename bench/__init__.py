"""The benchmark of the API against a bare Flask baseline (`python -m bench`, see README.md)."""

import warnings

# Connexion imports Starlette's test client, which warns about httpx on every import.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
