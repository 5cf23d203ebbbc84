"""The book's chapters: their parameters, sweeps and costs, opened in one call."""
