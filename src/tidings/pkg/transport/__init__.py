"""Servers a module can run: HTTP (FastAPI on uvicorn) and gRPC (grpc.aio), both with health and metrics."""
