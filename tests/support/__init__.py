"""What the test modules share: a real hub, PostgreSQL, browsers, clocks, seeds."""
