"""Real-time delivery in the bff: live connections (sessions), their bounded outboxes, the route table they keep
alive, and the ephemeral events (typing, presence) they relay. No transport here: ``service/`` speaks WebSocket
and gRPC, ``data/`` reaches Redis and the other bff instances."""
