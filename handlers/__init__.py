"""Plain handler functions, one module per area, named by the spec's operationIds."""

# The envelope of every success; data fields go beside it.
SUCCEED = {"code": 0, "info": "Succeed"}
