"""Modula: a GraphQL server for a headless CMS whose schema grows at runtime."""
