"""The search layer: Ray Tune callbacks and stoppers that turn trial results into store rows and
lifecycle hooks. Modules here import Ray; nothing is imported at package import."""
