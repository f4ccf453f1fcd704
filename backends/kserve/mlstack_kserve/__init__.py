"""mlstack backend for KServe on a team's own Kubernetes cluster."""
