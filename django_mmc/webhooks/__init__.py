"""The inbound half: the webhook endpoint that receives the platform's events."""
