"""The hostile-image suite: real images made by the real tools, then altered to attack,
run through the real command line under a memory and wall-clock limit (README.md here)."""
