"""Plain handler functions, one module per area, named by the spec's operationIds."""
