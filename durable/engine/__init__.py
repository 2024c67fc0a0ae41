"""How a run proceeds: replay, execution, leases, retries. No SQL, no argv."""
