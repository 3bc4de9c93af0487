"""Project-wide code that is not lesson content: data, test helpers, plots, benchmarks."""
