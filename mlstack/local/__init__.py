"""The embedded `local` backend: everything on one machine, nothing to install beyond pip."""
