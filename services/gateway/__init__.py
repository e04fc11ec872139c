"""gateway: REST/JSON and WebSocket for wallets and dashboards, over the gRPC services
(port 8080). Amounts are JSON strings (u64 exceeds JavaScript's safe integers)."""
