"""The seven-step way of working ("werkwijze integraal samenwerken") as a state machine."""
