"""Tests of the policy lifecycle and the workbench."""
