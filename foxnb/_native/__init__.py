"""C sources: the AOT runtime linked into every library and the generic call extension."""
