"""Who is asking: users and their passwords, login sessions, API tokens, roles and permissions,
and the viewer each request carries to its resolvers."""
