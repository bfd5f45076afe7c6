"""The gRPC layer: servicers, conversions, error statuses, interceptors and the server."""
