"""The interpreters: forward mode (jvp), reverse mode (reverse) and batching (batching)."""
