"""Resource graph, plan, apply, state, locking: the Terraform-like core."""
