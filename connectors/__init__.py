"""The outside world behind small interfaces: calendar sources and switchboards."""
