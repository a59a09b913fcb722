"""Admin API v1 (``/api/admin/v1``): program documents, versions, the simulator."""
