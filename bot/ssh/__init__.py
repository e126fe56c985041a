"""SSH: collecting an export from a router, the worker process, the RouterOS simulator."""
