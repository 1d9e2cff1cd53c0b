"""The command line and what it wires together: run, demo, preview, check, status."""
