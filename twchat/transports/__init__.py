"""Thin adapters from each wire (text lines, the browser) to the connection layer."""
