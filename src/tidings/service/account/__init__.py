"""The account service: users, credentials, tokens, profiles and blocks."""
