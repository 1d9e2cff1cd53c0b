"""Switchboards: the interface, the HTTP adapter and the built-in simulator."""
