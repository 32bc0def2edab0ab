"""Help: the commands a member may run, asked of the same middleware chain that runs them."""
