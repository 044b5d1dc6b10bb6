"""The gRPC domain services: ``account`` (users, credentials, tokens) and ``chat`` (conversations, messages)."""
