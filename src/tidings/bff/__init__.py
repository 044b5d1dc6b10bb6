"""The interface clients reach: REST and WebSocket for browsers, a gRPC stream for native clients."""
