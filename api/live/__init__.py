"""Live streams: the event bus of one API process, and the WebSocket and SSE routes."""
