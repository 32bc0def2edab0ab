"""The composition root: settings, the app factory, the list of features, the CLI."""
