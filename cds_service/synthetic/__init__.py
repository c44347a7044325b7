"""Synthetic charts and order-sign requests for sandboxes, demos and tests."""
