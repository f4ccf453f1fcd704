"""The project file: schema, loading with positions, interpolation, environments."""
