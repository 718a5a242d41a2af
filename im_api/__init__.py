"""The IM account and media API: app factory, configuration and HTTP plumbing."""
