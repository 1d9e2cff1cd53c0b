"""The service: config, store, planning, executing, scheduling and the command line."""
