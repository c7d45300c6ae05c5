"""CLI command implementations (one module per subcommand, imported lazily)."""
