"""Shared test set-up. Fixture images are built once per run (session scope) by the
builders in tests/builders/, with the real tools, from the trees they are expected to hold."""
