"""The scheduled warehouse merge (an EventBridge rule's Lambda target)."""
