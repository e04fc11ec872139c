"""cpi_manager: authorized programs, admin transactions and the position collateral flows
through position_manager's CPI into the vault (gRPC 50053, metrics 9103)."""
