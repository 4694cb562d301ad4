"""Partners, principals and bearer tokens: who is calling, for which organisation, in which role."""
