"""monitor: TVL, vault health and alerts (gRPC 50054, metrics 9104)."""
