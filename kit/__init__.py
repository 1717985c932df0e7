"""What the API, the CLI and the workers share, so that none imports another's internals: the connection to
Temporal (`connection`, with its payload `codec` and `tracing`), the keys file (`api_keys`), atomic file writes
(`files`) and every address Atelier hands out (`urls`)."""
