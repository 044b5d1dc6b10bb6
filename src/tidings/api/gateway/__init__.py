"""Generated from api/ by scripts/protogen.py. Do not edit."""
