"""The operators' back office: search, bans, message removal, audit log and stats."""
