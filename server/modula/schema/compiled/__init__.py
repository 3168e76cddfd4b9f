"""The fast path: a generated-API operation compiled into one SQL statement that builds the JSON
of `data` in the database, cached per schema generation; anything it cannot answer exactly is left
to Strawberry."""
