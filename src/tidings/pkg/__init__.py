"""What every module shares: config, lifecycle, logging, ids, storage and transport helpers."""
