"""The back office's adapters: gRPC stubs of account and chat, the search client."""
