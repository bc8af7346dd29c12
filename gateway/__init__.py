"""Oblivious Gateway Resource (RFC 9458 §5) for aiohttp: standalone or embedded.

``gateway.app.create_app(config)`` builds the application; ``gateway.config.GatewayConfig``
holds its settings; ``gateway.backends`` has the backends it hands inner requests to.
Submodules are imported on demand so ``import gateway`` stays cheap.
"""
