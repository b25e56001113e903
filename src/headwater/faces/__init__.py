"""The three faces over one core: the CLI, the REST API and the web UI."""
