"""The guard console (Textual)."""
