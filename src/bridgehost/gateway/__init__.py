"""The gateway: the aiohttp service exposed to the internet through the tunnel."""
