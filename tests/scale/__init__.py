"""Several server instances, a clustered store."""
