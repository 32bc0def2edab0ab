"""Web pages served by scrmbot: signed links, page templates and their access checks."""
