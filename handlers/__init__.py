"""Plain handler functions, one module per area (the spec's `x-openapi-router-controller`),
each named by its operationId in snake_case (`changeName` runs `change_name`)."""

# The envelope of every success; data fields go beside it.
SUCCEED = {"code": 0, "info": "Succeed"}
