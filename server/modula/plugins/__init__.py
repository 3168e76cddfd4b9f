"""The plugin host: manifests, plugin tables and their upgrades, the registry, loading and calls."""
