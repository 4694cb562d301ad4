"""Public request and response shapes; routes return these, never table objects."""
