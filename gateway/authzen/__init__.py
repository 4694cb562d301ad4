"""OpenID AuthZEN Authorization API 1.0 endpoints: a thin adapter over ``gateway.policy``."""
