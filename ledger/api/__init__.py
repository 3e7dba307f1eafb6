"""The HTTP service: the Litestar app factory, thin controllers, guards and problem details."""
