"""The chat API: the generated gRPC servicer on the use cases (protobuf <-> domain, nothing else)."""
