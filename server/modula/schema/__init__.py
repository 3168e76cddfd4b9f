"""GraphQL: core Strawberry types, request context and loaders, the schema builder and the live schema."""
