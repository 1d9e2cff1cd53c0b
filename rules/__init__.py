"""The pure core: domain types, rule files, tags and the timeline. No I/O, no clock reads."""
