"""The chat service: conversations, membership, sending (seq and ids), history, read state, recall."""
