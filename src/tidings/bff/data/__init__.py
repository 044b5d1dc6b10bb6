"""The bff's adapters: gRPC stubs of account and chat wrapped as repos, presence from the route table, ``Deliver``
to other bff instances, and the real-time metrics on Prometheus."""
