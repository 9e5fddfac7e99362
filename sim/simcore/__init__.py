"""What every simulated cloud shares: TLS certificates, a clock with a latency model, injected faults,
the request record, token buckets, the test-control endpoints and a background-thread runner.

Each cloud's simulator (``sim/<cloud>sim``) builds its wire protocol on these; none of them imports the
operator, so the simulators cannot share the operator's assumptions.
"""
