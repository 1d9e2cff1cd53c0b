"""Push notifications: the webhook app, the hub that turns them into syncs, and upkeep."""
