"""The bff's adapters: gRPC stubs of account and chat wrapped as repos, Redis routes and presence."""
