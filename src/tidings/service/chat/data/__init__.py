"""Adapters of the chat ports: SQL repositories, the seq allocators, the bus publisher, the account client."""
