"""Object storage of the studies app: the ``Storage`` interface and its local backend, the
configured store, and deleting objects crash-safely once the rows that name them are gone."""
