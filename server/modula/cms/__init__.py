"""Typed core CMS services: sites, routes, datatypes and content. They speak Python, not GraphQL."""
