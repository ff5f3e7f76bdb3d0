"""The transcript layer's ``%chat`` commands: save, load, record, replay, live, restore."""
