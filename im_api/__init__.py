"""The IM account and media API: app factory, configuration and HTTP plumbing."""

import warnings

# Connexion imports starlette.testclient at import time (for its test_client()), and
# Starlette 1.10 warns there that its test client wants httpx2. The server never uses that
# client: without this, every start of the server printed the warning in its log.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
