"""Outgoing notifications: signed webhook deliveries, Slack messages, the SSRF guard."""
