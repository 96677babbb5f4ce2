"""Integrations with other libraries' decode loops (transformers)."""
