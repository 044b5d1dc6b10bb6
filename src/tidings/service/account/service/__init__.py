"""gRPC servicers: request -> use case -> response, no logic."""
