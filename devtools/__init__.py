"""Development tools: run from a checkout, never installed with kiportal (see `make demo`)."""
