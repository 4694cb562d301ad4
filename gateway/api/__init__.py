"""HTTP routes: parse, authenticate, call one service, return a public schema."""
