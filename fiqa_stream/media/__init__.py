"""Media composed for the demo, the tests and the benchmarks, and the real face photos it starts from."""
