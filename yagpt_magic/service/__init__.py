"""Service: the ways a reply is produced, behind core's Backend protocol; the connection."""
