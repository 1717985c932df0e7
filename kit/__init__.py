"""What the API, the CLI and the workers share, so that none imports another's internals: the connection to
Temporal (`connection`, with its payload `codec` and `tracing`), the database of what is not a run (`db`) and
the API keys in it (`api_keys`), atomic file writes (`files`), the artifact store (`storage`) and a world's
layout in it (`world_layout`), the guards on reference images and the addresses a caller may name (`references`,
`addresses`), reading a run (`run_reading`) and every address Atelier hands out (`urls`)."""
