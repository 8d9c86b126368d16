"""Loopback stand-ins for the internet services bridgehost talks to (OpenAI, Telegram,
Cloudflare). Each is checked in its own tests against the official client."""
