"""HTTP routers: thin, they validate and call the domain services."""
