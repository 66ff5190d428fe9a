"""HTTP: app factory, routes, schemas, and the one place errors become HTTP."""
