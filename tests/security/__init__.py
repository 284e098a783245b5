"""The attack catalogue: one module per theme, each test an exploit that must stay refused."""
