"""The gates: Great Expectations suites and validation of inputs and outputs, and the champion-challenger gate."""
