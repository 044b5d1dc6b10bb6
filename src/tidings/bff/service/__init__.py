"""HTTP routes and gRPC servicers of the bff: request DTO -> use case -> response DTO, no logic."""
