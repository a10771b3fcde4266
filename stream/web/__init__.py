"""HTTP edges: the webhook receiver (``statusflow webhooks``)."""
