"""Model folders and strict weight loading."""
